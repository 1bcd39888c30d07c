"""Plain textbook NumPy versions of the two SGD epochs: the baselines for tests and benchmarks.

Written the way the lecture's pseudo-code reads (one-hot matrix, exp then divide,
``X.T @ (Z - Y)``), with no buffers and no in-place tricks. They share no code with
``softmax_lab.core.model`` / ``optim`` / ``loss`` so that agreement between the two is evidence.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["evaluate", "mlp_epoch", "softmax_epoch"]


def _softmax(H: NDArray[np.float32]) -> NDArray[np.float32]:
    Z = np.exp(H - H.max(axis=1, keepdims=True))
    return Z / Z.sum(axis=1, keepdims=True)


def softmax_epoch(
    X: NDArray[np.float32],
    y: NDArray[np.integer],
    theta: NDArray[np.float32],
    *,
    lr: float,
    batch: int,
) -> None:
    """One in-order SGD epoch of softmax regression; updates ``theta`` (n, k) in place."""
    k = theta.shape[1]
    for i in range(0, X.shape[0], batch):
        Xb, yb = X[i : i + batch], y[i : i + batch]
        Z = _softmax(Xb @ theta)
        Y = np.eye(k, dtype=np.float32)[yb]
        theta -= lr / Xb.shape[0] * (Xb.T @ (Z - Y))


def mlp_epoch(
    X: NDArray[np.float32],
    y: NDArray[np.integer],
    W1: NDArray[np.float32],
    W2: NDArray[np.float32],
    *,
    lr: float,
    batch: int,
) -> None:
    """One in-order SGD epoch of the two-layer ReLU net; updates ``W1``, ``W2`` in place."""
    k = W2.shape[1]
    for i in range(0, X.shape[0], batch):
        Xb, yb = X[i : i + batch], y[i : i + batch]
        Z1 = np.maximum(Xb @ W1, 0)
        G2 = _softmax(Z1 @ W2) - np.eye(k, dtype=np.float32)[yb]
        G1 = (Z1 > 0) * (G2 @ W2.T)
        B = Xb.shape[0]
        W1 -= lr / B * (Xb.T @ G1)
        W2 -= lr / B * (Z1.T @ G2)


def evaluate(
    X: NDArray[np.float32], y: NDArray[np.integer], theta: NDArray[np.floating]
) -> tuple[float, float]:
    """Mean softmax cross-entropy and 0/1 error of H = Xθ over the whole set."""
    H = X @ theta
    log_norm = np.log(np.exp(H - H.max(axis=1, keepdims=True)).sum(axis=1)) + H.max(axis=1)
    loss = float(np.mean(log_norm - H[np.arange(X.shape[0]), y]))
    return loss, float(np.mean(H.argmax(axis=1) != y))
