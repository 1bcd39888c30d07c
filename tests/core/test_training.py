from __future__ import annotations

import numpy as np
import pytest

from softmax_lab.core.loss import confusion_matrix
from softmax_lab.core.model import Hypothesis, SoftmaxRegression, TwoLayerNet
from softmax_lab.core.optim import batch_order, sgd_epoch
from softmax_lab.core.textbook import evaluate as textbook_evaluate
from softmax_lab.core.training import (
    DivergenceError,
    EpochMetrics,
    ExplosionError,
    StackPlan,
    TrainResult,
    detect_explosion,
    evaluate,
    seeded_rngs,
    train,
    train_stack,
)


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


def _with_val(split, net: SoftmaxRegression | None = None, **kwargs):
    """Train ``net`` (a fresh one if None) on the first 800 training rows, validating on the
    other 200."""
    X, y, X_test, y_test = split
    return train(
        SoftmaxRegression(30, 10) if net is None else net,
        X[:800],
        y[:800],
        X_test,
        y_test,
        lr=0.1,
        batch_size=64,
        epochs=3,
        X_val=X[800:],
        y_val=y[800:],
        **kwargs,
    )


def test_validation_metrics_equal_an_independent_evaluation_every_epoch(split) -> None:
    thetas: list[np.ndarray] = []
    net = SoftmaxRegression(30, 10)
    X, y = split[0], split[1]
    result = _with_val(
        split, net, on_epoch=lambda m: thetas.append(net.params["theta"].astype(np.float64))
    )
    assert len(thetas) == 3
    for m, theta in zip(result.history, thetas, strict=True):
        loss, err = textbook_evaluate(X[800:].astype(np.float64), y[800:], theta)
        assert m.val_loss == pytest.approx(loss, rel=1e-5)
        assert m.val_error == err
        assert set(m.as_dict()) >= {"val_loss", "val_error"}


def test_a_validation_set_changes_no_other_number(split) -> None:
    with_val = _with_val(split)
    X, y, X_test, y_test = split
    without = train(
        SoftmaxRegression(30, 10), X[:800], y[:800], X_test, y_test, lr=0.1, batch_size=64, epochs=3
    )
    np.testing.assert_array_equal(with_val.params["theta"], without.params["theta"])
    for a, b in zip(with_val.history, without.history, strict=True):
        assert (a.train_loss, a.train_error, a.test_loss, a.test_error) == (
            b.train_loss,
            b.train_error,
            b.test_loss,
            b.test_error,
        )
        assert (b.val_loss, b.val_error) == (None, None)
        assert "val_loss" not in b.as_dict() and "val_error" not in b.as_dict()


def test_validation_rows_need_their_labels(split) -> None:
    X, y, X_test, y_test = split
    with pytest.raises(ValueError, match="X_val and y_val must be given together"):
        train(
            SoftmaxRegression(30, 10),
            X,
            y,
            X_test,
            y_test,
            lr=0.1,
            batch_size=64,
            epochs=1,
            X_val=X_test,
        )


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
    with pytest.raises(ValueError, match=r"lr must be > 0 and finite, got -0\.1"):
        train(SoftmaxRegression(30, 10), *split, lr=-0.1, batch_size=10, epochs=1)


def test_train_rejects_zero_epochs(split) -> None:
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        train(SoftmaxRegression(30, 10), *split, lr=0.1, batch_size=10, epochs=0)


def test_evaluate_of_zero_theta_is_log_k_and_chance_error(split) -> None:
    loss, err = evaluate(SoftmaxRegression(30, 10), split[0], split[1])
    assert loss == pytest.approx(np.log(10))
    assert err == pytest.approx(np.mean(split[1] != 0))


def _net(model: str, seed: int = 0) -> Hypothesis:
    if model == "softmax":
        return SoftmaxRegression(30, 10)
    return TwoLayerNet(30, 10, hidden_dim=32, rng=seeded_rngs(seed)[0])


def _strip(history: list[EpochMetrics]) -> list[tuple[float, ...]]:
    """Everything but the wall time."""
    return [(m.epoch, m.train_loss, m.train_error, m.test_loss, m.test_error) for m in history]


@pytest.mark.parametrize("model", ["softmax", "mlp"])
@pytest.mark.parametrize("batch_size", [64, 37])
def test_one_step_size_steps_bit_for_bit_as_a_vector_of_one(split, model: str, batch_size) -> None:
    """What lets the loop give a stack of one block sgd_epoch's faster scalar path."""
    X, y = split[0], split[1]
    nets, rngs = [_net(model), _net(model)], [np.random.default_rng(5), np.random.default_rng(5)]
    for _ in range(2):
        for net, lr, rng in zip(nets, (0.1, np.array([0.1], np.float32)), rngs, strict=True):
            order = batch_order(X.shape[0], shuffle=True, rng=rng)
            sgd_epoch(net, X, y, lr=lr, batch_size=batch_size, order=order)
    for name in nets[0].params:
        assert nets[0].params[name].tobytes() == nets[1].params[name].tobytes()


@pytest.mark.parametrize("model", ["softmax", "mlp"])
def test_jobs_of_one_block_take_bit_for_bit_prefixes_of_it(split, model: str) -> None:
    """Jobs reading one block each get exactly what training alone for their epochs gives."""
    job_epochs = (4, 1, 2)
    plan = StackPlan((0.1,), (4,), (0, 0, 0), job_epochs)
    stacked = train_stack(
        _net(model), *split, plan, batch_size=64, shuffle=True, rng=seeded_rngs(3)[1]
    )
    for epochs, got in zip(job_epochs, stacked, strict=True):
        alone = train(
            _net(model),
            *split,
            lr=0.1,
            batch_size=64,
            epochs=epochs,
            shuffle=True,
            rng=seeded_rngs(3)[1],
        )
        assert got.error is None and got.params.keys() == alone.params.keys()
        for name, array in alone.params.items():
            assert got.params[name].tobytes() == array.tobytes()
        assert _strip(got.history) == _strip(alone.history)
        assert got.test_confusion is not None and alone.test_confusion is not None
        np.testing.assert_array_equal(got.test_confusion, alone.test_confusion)


def test_block_c_owns_columns_c_k_to_c_plus_1_k(split) -> None:
    model = SoftmaxRegression(30, 3 * 10)
    plan = StackPlan((0.05, 0.1, 0.5), (2, 2, 2), (2, 0, 1), (2, 2, 2))
    results = train_stack(model, *split, plan, batch_size=64)
    theta = model.params["theta"]  # (30, 30): no block left before the end, so no narrower copy
    for j, c in enumerate(plan.column):
        np.testing.assert_array_equal(results[j].params["theta"], theta[:, c * 10 : (c + 1) * 10])


def test_a_job_is_handed_over_as_soon_as_its_epochs_end(split) -> None:
    events: list[tuple[str, int, int]] = []

    def on_job_end(j: int, r: TrainResult) -> None:
        events.append(("end", j, len(r.history)))

    train_stack(
        SoftmaxRegression(30, 20),
        *split,
        StackPlan((0.1, 0.2), (2, 3), (0, 1, 0), (1, 3, 2)),
        batch_size=100,
        on_epoch=lambda j, m: events.append(("epoch", j, m.epoch)),
        on_job_end=on_job_end,
    )
    assert events == [
        ("epoch", 0, 1),
        ("end", 0, 1),
        ("epoch", 2, 1),
        ("epoch", 1, 1),
        ("epoch", 2, 2),
        ("end", 2, 2),
        ("epoch", 1, 2),
        ("epoch", 1, 3),
        ("end", 1, 3),
    ]


def test_plan_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="a plan needs epochs per block and per job, and a job"):
        StackPlan((0.1, 0.2), (3,), (0,), (3,))


def test_plan_rejects_a_job_reading_no_block() -> None:
    with pytest.raises(ValueError, match="each job must read a block"):
        StackPlan((0.1,), (3,), (1,), (3,))


def test_plan_rejects_a_block_training_longer_than_its_longest_job() -> None:
    with pytest.raises(ValueError, match="each block train for its longest job's epochs"):
        StackPlan((0.1, 0.2), (3, 5), (0, 1), (3, 4))


def test_only_softmax_regression_stacks(split) -> None:
    with pytest.raises(TypeError, match="only softmax regression stacks blocks, got TwoLayerNet"):
        train_stack(
            _net("mlp"), *split, StackPlan((0.1, 0.2), (1, 1), (0, 1), (1, 1)), batch_size=10
        )


# -- explosions without NaN ----------------------------------------------------------------


def _digits() -> tuple[np.ndarray, ...]:
    from softmax_lab.data.sources import load_dataset

    d = load_dataset("mnist_5k")
    return d.X_train[:800], d.y_train[:800], d.X_test[:200], d.y_test[:200]


def test_a_huge_step_size_explodes_with_finite_losses_and_is_detected() -> None:
    X, y, Xt, yt = _digits()
    result = train(SoftmaxRegression(784, 10), X, y, Xt, yt, lr=1000, batch_size=100, epochs=3)
    assert all(np.isfinite(m.train_loss) for m in result.history)  # not a DivergenceError
    explosion = detect_explosion(result.history, n_classes=10)
    assert isinstance(explosion, ExplosionError) and isinstance(explosion, RuntimeError)
    assert explosion.loss == result.history[-1].train_loss > 100
    assert explosion.bound == pytest.approx(np.log(10)) and explosion.epoch == 3
    assert str(explosion) == (
        f"training exploded: final train loss {explosion.loss:.5g} (epoch 3) is not below "
        "ln(10) = 2.3026, the loss of predicting all 10 classes alike "
        "(optim.max_train_loss=null); try a smaller optim.lr"
    )


def test_the_reference_step_size_does_not_explode() -> None:
    X, y, Xt, yt = _digits()
    result = train(SoftmaxRegression(784, 10), X, y, Xt, yt, lr=0.2, batch_size=100, epochs=3)
    assert detect_explosion(result.history, n_classes=10) is None


def test_a_two_layer_net_whose_relus_died_sits_at_ln_k_and_is_detected() -> None:
    X, y, Xt, yt = _digits()
    init_rng, _ = seeded_rngs(0)
    net = TwoLayerNet(784, 10, hidden_dim=50, rng=init_rng)
    result = train(net, X, y, Xt, yt, lr=1000, batch_size=100, epochs=3)
    assert not net.forward(X).any()  # every logit 0: uniform predictions, loss ln 10
    assert result.history[-1].train_loss == pytest.approx(np.log(10), rel=1e-6)
    assert detect_explosion(result.history, n_classes=10) is not None


def test_an_explicit_bound_replaces_ln_k() -> None:
    history = [EpochMetrics(1, 9.0, 0.5, 9.0, 0.5, 0.1), EpochMetrics(2, 4.0, 0.5, 4.0, 0.5, 0.1)]
    assert detect_explosion(history, n_classes=10) is not None  # 4.0 > ln 10
    assert detect_explosion(history, n_classes=100) is None  # ln 100 = 4.6: only the last counts
    assert detect_explosion(history, n_classes=10, max_train_loss=5.0) is None
    explosion = detect_explosion(history, n_classes=10, max_train_loss=3.5)
    assert explosion is not None and "is not below optim.max_train_loss=3.5;" in str(explosion)
    assert detect_explosion([], n_classes=10) is None


# -- jobs stopped early by a judge (pruning) -----------------------------------------------


def _stack(split, plan: StackPlan, stops: dict[int, set[int]] | None = None, **hooks):
    """Train ``plan`` on a zero stack, shuffled by seed 3; ``stops``: epoch → jobs to stop."""
    judge = None if stops is None else (lambda epoch: stops.get(epoch, set()))
    model = SoftmaxRegression(30, 10 * len(plan.lrs))
    results = train_stack(
        model,
        *split,
        plan,
        batch_size=64,
        shuffle=True,
        rng=seeded_rngs(3)[1],
        judge=judge,
        **hooks,
    )
    return model, results


def test_a_stopped_column_ends_at_its_epoch_and_the_others_train_on(split) -> None:
    lrs, epochs = (0.05, 0.1, 0.5), (5, 5, 5)
    _, stopped = _stack(split, StackPlan(lrs, epochs, (0, 1, 2), (5, 5, 5)), {2: {1}})
    # the same stack unstopped, with one more job reading block 1 for 2 epochs: its snapshot
    _, full = _stack(split, StackPlan(lrs, epochs, (0, 1, 2, 1), (5, 5, 5, 2)))
    got, snapshot = stopped[1], full[3]
    assert got.stopped_at == 2 and got.error is None
    assert [m.epoch for m in got.history] == [1, 2]
    # up to the stop the stack is the same: the stopped block's θ is bit for bit the snapshot
    assert got.params["theta"].tobytes() == snapshot.params["theta"].tobytes()
    assert _strip(got.history) == _strip(snapshot.history)
    assert got.test_confusion is None  # no job of this plan ends at epoch 2: not counted
    for j in (0, 2):  # the stack narrowed after epoch 2: equal to float32 rounding
        assert stopped[j].stopped_at is None and len(stopped[j].history) == 5
        np.testing.assert_allclose(stopped[j].params["theta"], full[j].params["theta"], atol=1e-5)
        for a, b in zip(stopped[j].history, full[j].history, strict=True):
            assert a.train_loss == pytest.approx(b.train_loss, abs=1e-6)
            assert a.test_loss == pytest.approx(b.test_loss, abs=1e-6)
    assert full[1].stopped_at is None and len(full[1].history) == 5


def test_stopping_gives_bitwise_the_same_results_for_the_same_plan_and_stops(split) -> None:
    plan = StackPlan((0.05, 0.1, 0.5), (5, 4, 5), (0, 1, 2, 1), (5, 4, 5, 2))
    stops = {1: {2}, 3: {0}}
    _, a = _stack(split, plan, stops)
    _, b = _stack(split, plan, stops)
    assert [r.stopped_at for r in a] == [3, None, 1, None]
    for x, y in zip(a, b, strict=True):
        assert x.params["theta"].tobytes() == y.params["theta"].tobytes()
        assert _strip(x.history) == _strip(y.history)


def test_a_job_stopped_in_a_block_others_still_read_changes_nothing_for_them(split) -> None:
    """The block stays in the stack, so no GEMM changes width: the others are bit for bit."""
    plan = StackPlan((0.1, 0.3), (4, 4), (0, 0, 1), (4, 3, 4))
    _, stopped = _stack(split, plan, {1: {0}})
    _, full = _stack(split, plan)
    assert stopped[0].stopped_at == 1 and len(stopped[0].history) == 1
    assert stopped[0].params["theta"].tobytes() != full[0].params["theta"].tobytes()
    for j in (1, 2):
        assert stopped[j].params["theta"].tobytes() == full[j].params["theta"].tobytes()
        assert _strip(stopped[j].history) == _strip(full[j].history)


def test_a_block_leaves_the_stack_once_all_its_jobs_are_stopped(split) -> None:
    plan = StackPlan((0.1, 0.3), (5, 5), (0, 0, 1), (5, 3, 5))
    seen: list[tuple[int, int]] = []
    ends: list[tuple[int, int | None]] = []
    model, results = _stack(
        split,
        plan,
        {2: {0, 1}},
        on_epoch=lambda j, m: seen.append((j, m.epoch)),
        on_job_end=lambda j, r: ends.append((j, r.stopped_at)),
    )
    assert [r.stopped_at for r in results] == [2, 2, None]
    assert ends == [(0, 2), (1, 2), (2, None)]  # handed over as soon as they were stopped
    assert [j for j, e in seen if e > 2] == [2, 2, 2]  # only job 2 is evaluated after epoch 2
    # the stack was replaced by a narrower one after epoch 2: the model given stays there
    theta = model.params["theta"]  # (30, 20)
    assert theta[:, :10].tobytes() == results[0].params["theta"].tobytes()
    assert not np.array_equal(theta[:, 10:], results[2].params["theta"])
    assert results[2].test_confusion is not None  # its own last epoch counted it


def test_a_stop_at_a_jobs_last_epoch_or_after_it_ended_is_ignored(split) -> None:
    plan = StackPlan((0.1,), (3,), (0, 0), (3, 1))
    _, results = _stack(split, plan, {1: {1}, 2: {1}, 3: {0}})
    assert [r.stopped_at for r in results] == [None, None]
    assert [len(r.history) for r in results] == [3, 1]


def test_the_judge_must_name_jobs_of_the_plan(split) -> None:
    with pytest.raises(
        ValueError, match=r"the judge stopped jobs \[3\], but the plan has jobs 0..1"
    ):
        _stack(split, StackPlan((0.1, 0.2), (2, 2), (0, 1), (2, 2)), {1: {3}})


@pytest.mark.parametrize("model", ["softmax", "mlp"])
def test_train_should_stop_ends_after_the_epoch_it_says(split, model: str) -> None:
    seen: list[int] = []

    def should_stop(m: EpochMetrics) -> bool:
        seen.append(m.epoch)
        return m.epoch == 2

    net = _net(model)
    common = dict(lr=0.1, batch_size=64, shuffle=True)
    stopped = train(net, *split, epochs=5, rng=seeded_rngs(3)[1], should_stop=should_stop, **common)
    short = train(_net(model), *split, epochs=2, rng=seeded_rngs(3)[1], **common)
    assert seen == [1, 2] and stopped.stopped_at == 2 and short.stopped_at is None
    assert _strip(stopped.history) == _strip(short.history)
    for name, array in short.params.items():
        assert stopped.params[name].tobytes() == array.tobytes()
        assert net.params[name].tobytes() == array.tobytes()  # trained in place up to the stop
    assert stopped.test_confusion is None  # epoch 2 was not its last planned epoch
