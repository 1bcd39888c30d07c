"""The optimiser: one epoch of minibatch SGD for any hypothesis in ``softmax_lab.core.model``.

For each batch (X_b, y_b) of size B (the last one may be smaller):

    Z = softmax(h(X_b)),  p := p − (α/B) ∂/∂p Σ_i ℓ_ce(h(x_i), y_i)   for every parameter p

which for softmax regression is the lecture's θ := θ − (α/B) X_bᵀ (Z − I_y).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from softmax_lab.core.constraints import Interval, check_params
from softmax_lab.core.loss import softmax_grad_
from softmax_lab.core.model import Hypothesis

__all__ = ["batch_order", "sgd_epoch"]

_PARAMETER_CONSTRAINTS = {"batch_size": Interval(int, 1, None, closed="left")}


def batch_order(
    m: int, *, shuffle: bool, rng: np.random.Generator | None
) -> NDArray[np.intp] | None:
    """The example order for one epoch: ``None`` (in order) or a permutation drawn from ``rng``."""
    if not shuffle:
        return None
    if rng is None:
        raise ValueError("shuffle=True needs an np.random.Generator (rng=...)")
    return rng.permutation(m)


def sgd_epoch(
    model: Hypothesis,
    X: NDArray[np.float32],
    y: NDArray[np.integer],
    *,
    lr: float | NDArray[np.float32],
    batch_size: int,
    order: NDArray[np.intp] | None = None,
) -> None:
    """Run one epoch of minibatch SGD, updating ``model.params`` in place.

    Parameters
    ----------
    model : Hypothesis
        Its ``params`` are updated in place.
    X : ndarray of shape (m, n), float32, C-contiguous
        Training inputs.
    y : ndarray of shape (m,), integer
        Training labels.
    lr : float, or ndarray of shape (K,) float32
        Step size α. An array gives K models stacked side by side whose logits are (b, K, k);
        each slice gets its own step size (fused sweeps).
    batch_size : int
        B. Batches are consecutive slices of ``X`` (or of ``X[order]``); the last may be short
        and is then divided by its own size.
    order : ndarray of shape (m,), optional
        A permutation of the examples for this epoch; ``None`` keeps the stored order.

    Raises
    ------
    softmax_lab.errors.ConfigError
        ``batch_size`` below 1 (or not an int).
    """
    check_params(_PARAMETER_CONSTRAINTS, batch_size=batch_size)
    m = X.shape[0]
    lr_vec = np.asarray(lr, dtype=X.dtype)  # a 0-d array keeps float32 arithmetic float32
    xbuf = None if order is None else np.empty((min(batch_size, m), X.shape[1]), X.dtype)
    for start in range(0, m, batch_size):
        # batch: a view in stored order, or a gather into one reused buffer when shuffled
        if order is None:
            Xb, yb = X[start : start + batch_size], y[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            assert xbuf is not None
            Xb = np.take(X, idx, axis=0, out=xbuf[: idx.shape[0]])
            yb = y[idx]
        b = Xb.shape[0]
        # forward: logits (b, k), or (b, K·k) for K stacked models
        H = model.forward(Xb)
        # loss gradient w.r.t. the logits, in place: H becomes Z − I_y
        if lr_vec.ndim == 0:
            G = softmax_grad_(H, yb)
            # fold α/B into G: every parameter gradient is linear in G, so this scales them all
            G *= lr_vec / b
        else:
            G = softmax_grad_(H.reshape(b, lr_vec.shape[0], -1), yb)  # (b, K, k)
            G *= (lr_vec / b)[:, None]
            G = G.reshape(b, -1)
        # gradient and update: p −= (α/B) ∇p
        for name, step in model.backward(Xb, G).items():
            np.subtract(model.params[name], step, out=model.params[name])
