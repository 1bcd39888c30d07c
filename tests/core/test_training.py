from __future__ import annotations

import numpy as np
import pytest

from softmax_lab.core.loss import confusion_matrix
from softmax_lab.core.model import SoftmaxRegression, TwoLayerNet
from softmax_lab.core.textbook import evaluate as textbook_evaluate
from softmax_lab.core.training import DivergenceError, EpochMetrics, evaluate, seeded_rngs, train


def _blobs(m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ten Gaussian clusters in 30 dimensions: learnable, not trivially separable."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((10, 30)).astype(np.float32)
    y = rng.integers(0, 10, m).astype(np.uint8)
    X = centers[y] + 1.5 * rng.standard_normal((m, 30)).astype(np.float32)
    return np.ascontiguousarray(X, dtype=np.float32), y


@pytest.fixture
def split() -> tuple[np.ndarray, ...]:
    X, y = _blobs(1200, 0)
    return X[:1000], y[:1000], X[1000:], y[1000:]


def _run(split, *, seed: int, shuffle: bool, model: str = "softmax", epochs: int = 4):
    init_rng, shuffle_rng = seeded_rngs(seed)
    net = (
        SoftmaxRegression(30, 10)
        if model == "softmax"
        else TwoLayerNet(30, 10, hidden_dim=32, rng=init_rng)
    )
    return train(
        net, *split, lr=0.1, batch_size=64, epochs=epochs, shuffle=shuffle, rng=shuffle_rng
    )


def test_history_has_one_record_per_epoch_and_learns(split) -> None:
    result = _run(split, seed=0, shuffle=False)
    assert [r.epoch for r in result.history] == [1, 2, 3, 4]
    first, last = result.history[0], result.history[-1]
    assert last.train_loss < first.train_loss < np.log(10)
    assert last.test_error < 0.2
    assert all(r.seconds > 0 for r in result.history)


def test_metrics_equal_an_independent_evaluation(split) -> None:
    result = _run(split, seed=0, shuffle=False)
    theta = result.params["theta"].astype(np.float64)
    loss, err = textbook_evaluate(split[2].astype(np.float64), split[3], theta)
    assert result.history[-1].test_loss == pytest.approx(loss, rel=1e-5)
    assert result.history[-1].test_error == err


@pytest.mark.parametrize("model", ["softmax", "mlp"])
def test_test_confusion_is_the_last_epochs_predictions(split, model: str) -> None:
    result = _run(split, seed=0, shuffle=False, model=model)
    X_test, y_test = split[2], split[3]
    if model == "softmax":
        logits = X_test @ result.params["theta"]
    else:
        logits = np.maximum(X_test @ result.params["W1"], 0) @ result.params["W2"]
    cm = result.test_confusion
    assert cm is not None and cm.shape == (10, 10) and cm.dtype == np.int64
    np.testing.assert_array_equal(cm, confusion_matrix(y_test, logits.argmax(axis=1), 10))
    assert 1 - np.trace(cm) / cm.sum() == pytest.approx(result.history[-1].test_error, abs=1e-12)


@pytest.mark.parametrize("model", ["softmax", "mlp"])
def test_same_seed_gives_bitwise_identical_params_and_history(split, model: str) -> None:
    a = _run(split, seed=3, shuffle=True, model=model)
    b = _run(split, seed=3, shuffle=True, model=model)
    for name in a.params:
        assert a.params[name].tobytes() == b.params[name].tobytes()
    strip = [(r.train_loss, r.train_error, r.test_loss, r.test_error) for r in a.history]
    assert strip == [(r.train_loss, r.train_error, r.test_loss, r.test_error) for r in b.history]


def test_other_seed_gives_other_shuffled_result(split) -> None:
    a = _run(split, seed=3, shuffle=True)
    b = _run(split, seed=4, shuffle=True)
    assert not np.array_equal(a.params["theta"], b.params["theta"])


def test_golden_values_fixed_by_seed(split) -> None:
    # Fixed by seed 0 on the synthetic blobs above; a change here means the numerics changed.
    h = _run(split, seed=0, shuffle=True).history[-1]
    assert h.train_loss == pytest.approx(0.2520928, abs=1e-6)
    assert h.test_error == 0.055


def test_on_epoch_hook_sees_every_epoch_in_order(split) -> None:
    seen: list[EpochMetrics] = []
    result = train(
        SoftmaxRegression(30, 10), *split, lr=0.1, batch_size=100, epochs=3, on_epoch=seen.append
    )
    assert seen == result.history


def test_divergence_stops_with_epoch_and_step_size(split) -> None:
    X, y, Xt, yt = split
    seen: list[EpochMetrics] = []
    with pytest.raises(DivergenceError, match=r"diverged in epoch \d+ with step size lr=1e\+30"):
        train(
            TwoLayerNet(30, 10, hidden_dim=16, rng=np.random.default_rng(0)),
            X * 1e3,
            y,
            Xt,
            yt,
            lr=1e30,
            batch_size=50,
            epochs=5,
            on_epoch=seen.append,
        )
    assert len(seen) < 5


def test_train_rejects_nonpositive_lr(split) -> None:
    with pytest.raises(ValueError, match=r"lr must be > 0, got -0\.1"):
        train(SoftmaxRegression(30, 10), *split, lr=-0.1, batch_size=10, epochs=1)


def test_train_rejects_zero_epochs(split) -> None:
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        train(SoftmaxRegression(30, 10), *split, lr=0.1, batch_size=10, epochs=0)


def test_evaluate_of_zero_theta_is_log_k_and_chance_error(split) -> None:
    loss, err = evaluate(SoftmaxRegression(30, 10), split[0], split[1])
    assert loss == pytest.approx(np.log(10))
    assert err == pytest.approx(np.mean(split[1] != 0))
