"""The loss: softmax cross-entropy, the 0/1 error (and its confusion matrix), and the gradient of
the loss w.r.t. the logits.

For logits h ∈ R^k and a label y ∈ {0..k-1} (the lecture's notation):

    ℓ_ce(h, y)  = −h_y + log Σ_j exp h_j
    ℓ_err(h, y) = 1{argmax_j h_j ≠ y}
    ∂ℓ_ce/∂h    = softmax(h) − e_y

All functions accept a batch of logits ``H`` of shape (m, k). ``softmax_grad_`` also accepts
(m, K, k): K independent models side by side sharing the labels (used by fused sweeps).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["classification_error", "confusion_matrix", "softmax_grad_", "softmax_loss"]


def _check_batch(H: NDArray[np.floating], y: NDArray[np.integer]) -> None:
    if H.ndim != 2:
        raise ValueError(f"logits H must have shape (m, k), got shape {H.shape}")
    if y.shape != (H.shape[0],):
        raise ValueError(f"labels y must have shape ({H.shape[0]},) to match H, got {y.shape}")


def softmax_loss(H: NDArray[np.floating], y: NDArray[np.integer]) -> float:
    """Mean softmax cross-entropy of a batch, computed stably.

    Parameters
    ----------
    H : ndarray of shape (m, k), float32 or float64
        Logits, one row per example. Not modified.
    y : ndarray of shape (m,), integer
        True labels in ``0..k-1``.

    Returns
    -------
    float
        ``mean_i (log Σ_j exp H_ij − H_{i,y_i})``. Subtracting each row's max before ``exp``
        keeps it finite for any finite logits; the mean is accumulated in float64.
    """
    _check_batch(H, y)
    m = H.shape[0]
    row_max = H.max(axis=1, keepdims=True)  # (m, 1)
    shifted = H - row_max  # (m, k)
    log_norm = np.log(np.exp(shifted).sum(axis=1, dtype=np.float64))  # (m,)
    picked = shifted[np.arange(m), y]  # (m,)
    return float(np.mean(log_norm - picked))


def classification_error(H: NDArray[np.floating], y: NDArray[np.integer]) -> float:
    """Fraction of rows whose arg-max logit is not the label (the 0/1 loss, averaged).

    Parameters
    ----------
    H : ndarray of shape (m, k)
        Logits.
    y : ndarray of shape (m,), integer
        True labels.

    Returns
    -------
    float
        In [0, 1]. Ties go to the lowest class index, as ``np.argmax`` does.
    """
    _check_batch(H, y)
    return float(np.mean(H.argmax(axis=1) != y))


def softmax_grad_(H: NDArray[np.float32], y: NDArray[np.integer]) -> NDArray[np.float32]:
    """Overwrite logits with the per-example gradient of the loss, ``softmax(H) − I_y``.

    Parameters
    ----------
    H : ndarray of shape (b, k) or (b, K, k), float32
        Logits; **overwritten in place** with ``Z − I_y`` where ``Z = softmax(H)`` along the
        last axis. With three axes, each of the K slices is an independent model.
    y : ndarray of shape (b,), integer
        Labels, shared by all K slices.

    Returns
    -------
    ndarray
        ``H`` itself (not divided by b: the caller folds ``lr / b`` in).
    """
    b = H.shape[0]
    # In-place max-shift, exp and normalise: no (b, k) temporaries in the training hot loop.
    H -= H.max(axis=-1, keepdims=True)
    np.exp(H, out=H)
    H /= H.sum(axis=-1, keepdims=True)
    # Subtracting 1 at the label positions replaces building a one-hot matrix.
    rows = np.arange(b)
    if H.ndim == 2:
        H[rows, y] -= 1.0
    else:
        H[rows, :, y] -= 1.0
    return H


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, k: int) -> NDArray[np.int64]:
    """Count each (true class, predicted class) pair.

    Parameters
    ----------
    y_true, y_pred : array_like of shape (m,), integer in 0..k−1
    k : int
        Number of classes.

    Returns
    -------
    ndarray of shape (k, k), int64
        Entry (i, j) counts the examples of class i predicted as j; rows sum to class sizes.
    """
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if yt.ndim != 1 or yt.shape != yp.shape:
        raise ValueError(
            f"y_true and y_pred must be 1-D of equal length; got shapes {yt.shape} and {yp.shape}"
        )
    for name, y in (("y_true", yt), ("y_pred", yp)):
        if y.size == 0:
            continue
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
        if y.min() < 0 or y.max() >= k:
            raise ValueError(
                f"{name} has labels outside 0..{k - 1}: min {y.min()}, max {y.max()} (is k={k} "
                "the number of classes?)"
            )
    # one flat cell index per example, row-major; intp so k·y cannot overflow a uint8 label
    cell = yt.astype(np.intp) * k + yp.astype(np.intp)
    return np.bincount(cell, minlength=k * k).reshape(k, k).astype(np.int64)
