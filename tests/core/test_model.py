"""Finite-difference gradient checks of both hypothesis classes, plus their shapes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from softmax_lab.core.loss import softmax_grad_, softmax_loss
from softmax_lab.core.model import (
    SoftmaxRegression,
    TwoLayerNet,
    build_model,
    class_probabilities,
    model_from_params,
)


def _analytic_grads(model: SoftmaxRegression | TwoLayerNet, X: np.ndarray, y: np.ndarray):
    """∇ of the mean loss through the model's own backward pass."""
    G = softmax_grad_(model.forward(X).copy(), y) / X.shape[0]
    return {name: g.copy() for name, g in model.backward(X, G).items()}


def _numeric_grad(f: Callable[[], float], p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of f w.r.t. every entry of p (changed in place and restored)."""
    grad = np.empty_like(p)
    for idx in np.ndindex(p.shape):
        old = p[idx]
        p[idx] = old + eps
        up = f()
        p[idx] = old - eps
        down = f()
        p[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


@pytest.fixture
def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((30, 12)), rng.integers(0, 5, 30)


def test_softmax_regression_gradient_matches_finite_differences(batch) -> None:
    X, y = batch
    model = SoftmaxRegression(12, 5, dtype=np.float64)
    model.params["theta"][:] = np.random.default_rng(1).standard_normal((12, 5)) * 0.3
    analytic = _analytic_grads(model, X, y)["theta"]
    numeric = _numeric_grad(lambda: softmax_loss(model.forward(X), y), model.params["theta"])
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-9)
    # and it is the lecture's closed form Xᵀ(Z − I_y)/m
    H = X @ model.params["theta"]
    Z = np.exp(H) / np.exp(H).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(analytic, X.T @ (Z - np.eye(5)[y]) / 30, rtol=1e-10)


@pytest.mark.parametrize("name", ["W1", "W2"])
def test_two_layer_net_gradient_matches_finite_differences(batch, name: str) -> None:
    X, y = batch
    model = TwoLayerNet(12, 5, hidden_dim=7, rng=np.random.default_rng(2), dtype=np.float64)
    analytic = _analytic_grads(model, X, y)[name]
    numeric = _numeric_grad(lambda: softmax_loss(model.forward(X), y), model.params[name])
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-8)


def test_softmax_regression_starts_at_zero_with_shape_n_by_k() -> None:
    model = SoftmaxRegression(784, 10)
    theta = model.params["theta"]
    assert theta.shape == (784, 10) and theta.dtype == np.float32 and not theta.any()


def test_two_layer_net_init_is_seeded_and_scaled() -> None:
    a = TwoLayerNet(784, 10, hidden_dim=400, rng=np.random.default_rng(5))
    b = TwoLayerNet(784, 10, hidden_dim=400, rng=np.random.default_rng(5))
    assert a.params["W1"].shape == (784, 400) and a.params["W2"].shape == (400, 10)
    np.testing.assert_array_equal(a.params["W1"], b.params["W1"])
    assert a.params["W1"].std() == pytest.approx(1 / np.sqrt(400), rel=0.02)
    assert a.params["W2"].std() == pytest.approx(1 / np.sqrt(10), rel=0.05)


def test_forward_serves_batches_of_different_sizes() -> None:
    rng = np.random.default_rng(3)
    softmax = SoftmaxRegression(6, 3)
    softmax.params["theta"][:] = rng.standard_normal((6, 3))
    mlp = TwoLayerNet(6, 3, hidden_dim=4, rng=np.random.default_rng(0))
    X = rng.standard_normal((10, 6)).astype(np.float32)
    for model in (softmax, mlp):
        full = model.forward(X).copy()
        np.testing.assert_allclose(model.forward(X[:3]), full[:3], rtol=1e-6)
        np.testing.assert_allclose(model.forward(X), full, rtol=1e-6)


def test_two_layer_net_backward_without_forward_is_an_error() -> None:
    model = TwoLayerNet(4, 3, hidden_dim=2, rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="forward"):
        model.backward(np.zeros((2, 4), np.float32), np.zeros((2, 3), np.float32))


def test_build_model_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown model 'cnn'; expected one of softmax, mlp"):
        build_model("cnn", n_features=4, n_classes=3)


def test_build_model_rejects_nonpositive_hidden_dim() -> None:
    with pytest.raises(ValueError, match=r"^hidden_dim must be >= 1, got 0$"):
        build_model("mlp", n_features=4, n_classes=3, hidden_dim=0)


@pytest.mark.parametrize("name", ["softmax", "mlp"])
def test_a_model_from_its_params_gives_the_trained_models_logits(name: str) -> None:
    rng = np.random.default_rng(3)
    trained = build_model(name, n_features=784, n_classes=10, hidden_dim=32, rng=rng)
    for p in trained.params.values():  # not the zeros θ starts at
        p += rng.standard_normal(p.shape, dtype=np.float32) * np.float32(0.1)
    X = rng.random((50, 784), dtype=np.float32)
    rebuilt = model_from_params({k: v.copy() for k, v in trained.params.items()})
    assert rebuilt.name == name
    np.testing.assert_array_equal(rebuilt.forward(X), trained.forward(X))


def test_class_probabilities_are_the_softmax_of_the_logits_in_chunks() -> None:
    rng = np.random.default_rng(4)
    model = model_from_params({"theta": rng.standard_normal((784, 10), dtype=np.float32)})
    X = rng.random((70, 784), dtype=np.float32)
    P = class_probabilities(model, X, chunk=32)  # three chunks, the last one short
    H = (X @ model.params["theta"]).astype(np.float64)
    expected = np.exp(H - H.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    assert P.dtype == np.float32 and P.shape == (70, 10)
    np.testing.assert_allclose(P, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(P.argmax(axis=1), H.argmax(axis=1))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"theta": np.zeros(784, np.float32)}, "must be 2-d"),
        ({"W1": np.zeros((784, 8), np.float32), "W2": np.zeros((9, 10), np.float32)}, "chain"),
        ({"W1": np.zeros((784, 8), np.float32)}, "neither"),
    ],
)
def test_model_from_params_rejects_what_is_no_hypothesis(params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        model_from_params(params)
