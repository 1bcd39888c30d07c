from __future__ import annotations

import numpy as np
import pytest

from softmax_lab.core.loss import softmax_grad_
from softmax_lab.core.model import SoftmaxRegression, TwoLayerNet
from softmax_lab.core.optim import batch_order, sgd_epoch
from softmax_lab.core.textbook import mlp_epoch, softmax_epoch


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((250, 20), dtype=np.float32), rng.integers(0, 10, 250).astype(np.uint8)


def test_one_step_with_full_batch_is_theta_minus_lr_times_gradient(data) -> None:
    X, y = data
    model = SoftmaxRegression(20, 10, dtype=np.float64)
    model.params["theta"][:] = np.random.default_rng(1).standard_normal((20, 10))
    theta0 = model.params["theta"].copy()
    H = X.astype(np.float64) @ theta0
    grad = X.T.astype(np.float64) @ softmax_grad_(H, y) / X.shape[0]
    sgd_epoch(model, X.astype(np.float64), y, lr=0.3, batch_size=X.shape[0])
    np.testing.assert_allclose(model.params["theta"], theta0 - 0.3 * grad, rtol=1e-12)


def test_softmax_epoch_matches_textbook_including_short_last_batch(data) -> None:
    X, y = data  # 250 = 3 batches of 80 + one of 10: the last one divides by 10
    model = SoftmaxRegression(20, 10)
    sgd_epoch(model, X, y, lr=0.5, batch_size=80)
    theta = np.zeros((20, 10), np.float64)
    softmax_epoch(X.astype(np.float64), y, theta, lr=0.5, batch=80)
    np.testing.assert_allclose(model.params["theta"], theta, atol=1e-6)


def test_mlp_epoch_matches_textbook(data) -> None:
    X, y = data
    model = TwoLayerNet(20, 10, hidden_dim=16, rng=np.random.default_rng(4))
    W1, W2 = (model.params[k].astype(np.float64) for k in ("W1", "W2"))
    sgd_epoch(model, X, y, lr=0.2, batch_size=32)
    mlp_epoch(X.astype(np.float64), y, W1, W2, lr=0.2, batch=32)
    np.testing.assert_allclose(model.params["W1"], W1, atol=1e-5)
    np.testing.assert_allclose(model.params["W2"], W2, atol=1e-5)


def test_shuffled_epoch_equals_in_order_epoch_on_permuted_data(data) -> None:
    X, y = data
    order = batch_order(250, shuffle=True, rng=np.random.default_rng(7))
    assert order is not None and sorted(order) == list(range(250))
    a, b = SoftmaxRegression(20, 10), SoftmaxRegression(20, 10)
    sgd_epoch(a, X, y, lr=0.1, batch_size=50, order=order)
    sgd_epoch(b, X[order], y[order], lr=0.1, batch_size=50)
    np.testing.assert_array_equal(a.params["theta"], b.params["theta"])


def test_stacked_models_with_own_step_sizes_equal_separate_models(data) -> None:
    X, y = data
    lrs = np.array([0.05, 0.2, 1.0], np.float32)
    stacked = SoftmaxRegression(20, 10 * 3)
    sgd_epoch(stacked, X, y, lr=lrs, batch_size=64)
    for j, lr in enumerate(lrs):
        alone = SoftmaxRegression(20, 10)
        sgd_epoch(alone, X, y, lr=float(lr), batch_size=64)
        block = stacked.params["theta"][:, 10 * j : 10 * (j + 1)]
        np.testing.assert_allclose(block, alone.params["theta"], atol=1e-6)


def test_batch_order_in_order_is_none() -> None:
    assert batch_order(10, shuffle=False, rng=None) is None


def test_batch_order_shuffle_without_rng_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"shuffle=True needs an np\.random\.Generator"):
        batch_order(10, shuffle=True, rng=None)


def test_sgd_epoch_rejects_zero_batch_size(data) -> None:
    X, y = data
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        sgd_epoch(SoftmaxRegression(20, 10), X, y, lr=0.1, batch_size=0)
