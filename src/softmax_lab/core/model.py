"""The hypothesis classes: linear softmax regression and a two-layer ReLU network.

A hypothesis maps a batch ``X`` of shape (b, n) to logits of shape (b, k) and back-propagates a
gradient of the loss w.r.t. those logits into gradients of its parameters. It knows nothing of
the loss or of the optimiser, so any hypothesis here drops into the same SGD loop.

- ``SoftmaxRegression``: h = Xθ, θ ∈ R^{n×k} starting at zeros (the lecture's model).
- ``TwoLayerNet``: h = ReLU(X W1) W2 without biases, W1 ∈ R^{n×h}, W2 ∈ R^{h×k} drawn from
  randn/√(out dim) (the reference's two-layer net).

A trained hypothesis comes back from its parameters alone (``model_from_params``: θ means
softmax regression, W1 and W2 the two-layer net), and ``class_probabilities`` turns its logits
into softmax probabilities: what a logged MLflow model predicts with.

Both keep preallocated float32 buffers sized to the largest batch seen, so the training loop
allocates nothing per step. Arrays returned by ``forward`` and ``backward`` are those buffers:
valid until the next call.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from softmax_lab.core.constraints import Interval, check_params

__all__ = [
    "MODEL_NAMES",
    "Hypothesis",
    "SoftmaxRegression",
    "TwoLayerNet",
    "build_model",
    "class_probabilities",
    "model_from_params",
]

MODEL_NAMES = ("softmax", "mlp")

_PARAMETER_CONSTRAINTS = {"hidden_dim": Interval(int, 1, None, closed="left")}

F32 = NDArray[np.float32]
_T = TypeVar("_T", bound=np.generic)


class Hypothesis(Protocol):
    """What the trainer needs from a hypothesis class."""

    name: str
    n_classes: int  # k: the logits' width
    params: dict[str, F32]

    def forward(self, X: F32) -> F32:
        """Logits (b, k) of a batch; remembers what ``backward`` needs."""
        ...

    def backward(self, X: F32, G: F32) -> dict[str, F32]:
        """Gradients of Σ_i G_i · h_i w.r.t. each parameter, for the batch last passed to
        ``forward`` (same ``X``). Keys match ``params``."""
        ...


def _grow(
    buf: NDArray[_T] | None, rows: int, cols: int, dtype: np.dtype[_T], *, zero: bool = False
) -> NDArray[_T]:
    """``buf`` if it holds at least ``rows`` rows of ``cols`` columns of ``dtype``, else a new one.

    The caller keeps the returned whole buffer and works on its first rows, ``buf[:b]`` (C-order,
    so that slice is contiguous). Holding the whole buffer, not the slice, keeps a big
    evaluation chunk from forcing a reallocation on every switch back to training batches.
    With ``zero``, a new buffer is filled with zeros.
    """
    if buf is None or buf.shape[0] < rows or buf.shape[1] != cols or buf.dtype != dtype:
        buf = np.zeros((rows, cols), dtype) if zero else np.empty((rows, cols), dtype)
    return buf


class SoftmaxRegression:
    """Softmax regression h_θ(x) = θᵀx, in batch form H = Xθ.

    Parameters
    ----------
    n_features : int
        n, the input dimension (784 for 28×28 images).
    n_classes : int
        k, the number of classes.
    dtype : numpy float dtype
        float32 for training; float64 for finite-difference gradient checks.

    Attributes
    ----------
    n_classes : int
        k.
    params : dict with key ``"theta"``: ndarray of shape (n, k), float32, starting at zeros.
    """

    name = "softmax"

    def __init__(self, n_features: int, n_classes: int, *, dtype: type = np.float32) -> None:
        self.n_classes = n_classes
        self.params: dict[str, F32] = {"theta": np.zeros((n_features, n_classes), dtype=dtype)}
        self._H: dict[int, F32] = {}
        self._grad = np.empty_like(self.params["theta"])

    def forward(self, X: F32) -> F32:
        theta = self.params["theta"]
        b = X.shape[0]
        H = self._H.get(b)
        if H is None:
            # Column-major logits: the per-row max and sum of the softmax then run over
            # contiguous columns, ~15 % off an epoch. One buffer per batch size seen (a slice of
            # a bigger F-ordered buffer would not be contiguous).
            H = self._H[b] = np.empty((b, theta.shape[1]), dtype=theta.dtype, order="F")
        np.matmul(X, theta, out=H)  # (b, k)
        return H

    def backward(self, X: F32, G: F32) -> dict[str, F32]:
        # X.T is a transposed view: BLAS reads it with a flag, no copy of the batch.
        np.matmul(X.T, G, out=self._grad)  # (n, k)
        return {"theta": self._grad}


class TwoLayerNet:
    """Two-layer ReLU network h(x) = W2ᵀ ReLU(W1ᵀ x), in batch form H = ReLU(X W1) W2.

    Parameters
    ----------
    n_features : int
        n, the input dimension.
    n_classes : int
        k, the number of classes.
    hidden_dim : int
        h, the width of the hidden layer.
    rng : numpy.random.Generator
        Source of the initial weights W1 ~ N(0, 1)/√h and W2 ~ N(0, 1)/√k.
    dtype : numpy float dtype
        float32 for training; float64 for finite-difference gradient checks.

    Attributes
    ----------
    n_classes : int
        k.
    params : dict with ``"W1"`` of shape (n, h) and ``"W2"`` of shape (h, k), float32.
    """

    name = "mlp"

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        *,
        hidden_dim: int,
        rng: np.random.Generator,
        dtype: type = np.float32,
    ) -> None:
        # Drawn in float32 whatever the dtype, so a float64 copy holds the same starting weights.
        W1 = rng.standard_normal((n_features, hidden_dim), dtype=np.float32)
        W1 /= np.float32(np.sqrt(hidden_dim))
        W2 = rng.standard_normal((hidden_dim, n_classes), dtype=np.float32)
        W2 /= np.float32(np.sqrt(n_classes))
        W1, W2 = W1.astype(dtype, copy=False), W2.astype(dtype, copy=False)
        self.n_classes = n_classes
        self.params: dict[str, F32] = {"W1": W1, "W2": W2}
        # Whole buffers (see ``_grow``); a batch of b rows uses their first b rows.
        self._A: F32 | None = None  # ReLU(X W1), (rows, h)
        self._zeros: F32 | None = None  # read-only zeros, (rows, h)
        self._G1: F32 | None = None  # back-propagated gradient at the hidden layer, (rows, h)
        self._mask: NDArray[np.bool_] | None = None  # 1{X W1 > 0}, (rows, h)
        self._H: dict[int, F32] = {}  # logits, (b, k) F-ordered, one per batch size seen
        self._b: int | None = None  # rows of the batch last passed to forward
        self._gW1 = np.empty_like(W1)
        self._gW2 = np.empty_like(W2)

    def forward(self, X: F32) -> F32:
        W1, W2 = self.params["W1"], self.params["W2"]
        b, (h, k) = X.shape[0], W2.shape
        self._A = _grow(self._A, b, h, W1.dtype)
        self._zeros = _grow(self._zeros, b, h, W1.dtype, zero=True)
        A = self._A[:b]
        np.matmul(X, W1, out=A)  # (b, h)
        # ReLU in place against a zero array rather than the scalar 0: NumPy's SIMD max loop
        # wants both operands contiguous, ~3x faster here; same result, NaN included.
        np.maximum(A, self._zeros[:b], out=A)
        H = self._H.get(b)
        if H is None:
            # Column-major logits, as in SoftmaxRegression: the softmax's per-row max and sum
            # then run over contiguous columns, and BLAS takes Aᵀ G and G W2ᵀ a little faster.
            H = self._H[b] = np.empty((b, k), dtype=W2.dtype, order="F")
        np.matmul(A, W2, out=H)  # (b, k)
        self._b = b
        return H

    def backward(self, X: F32, G: F32) -> dict[str, F32]:
        b = X.shape[0]
        if self._A is None or self._b != b:
            raise RuntimeError("TwoLayerNet.backward needs forward() on the same batch first")
        A, W2 = self._A[:b], self.params["W2"]
        h = A.shape[1]
        self._G1 = _grow(self._G1, b, h, A.dtype)
        self._mask = _grow(self._mask, b, h, np.dtype(np.bool_))
        G1, mask = self._G1[:b], self._mask[:b]
        # Transposed operands are views: BLAS reads them with a flag, no copies.
        np.matmul(A.T, G, out=self._gW2)  # (h, k)
        np.matmul(G, W2.T, out=G1)  # (b, h), uses W2 before it is updated
        np.greater(A, 0.0, out=mask)  # 1{X W1 > 0}: ReLU(z) > 0 exactly where z > 0
        # Times a bool mask: as fast as a float32 0/1 mask (whose cast costs the same), 4-6x
        # faster than G1[A <= 0] = 0, np.putmask or np.copyto(..., where=).
        np.multiply(G1, mask, out=G1)
        np.matmul(X.T, G1, out=self._gW1)  # (n, h)
        return {"W1": self._gW1, "W2": self._gW2}


def build_model(
    name: str,
    *,
    n_features: int,
    n_classes: int,
    hidden_dim: int = 400,
    rng: np.random.Generator | None = None,
) -> SoftmaxRegression | TwoLayerNet:
    """Construct a hypothesis by name (``"softmax"`` or ``"mlp"``).

    ``hidden_dim`` and ``rng`` are used by ``"mlp"`` only; a missing ``rng`` means seed 0.
    An unknown name raises ``ValueError``; an mlp's ``hidden_dim`` below 1 (or not an int),
    ``softmax_lab.errors.ConfigError``.
    """
    if name == "softmax":
        return SoftmaxRegression(n_features, n_classes)
    if name == "mlp":
        check_params(_PARAMETER_CONSTRAINTS, hidden_dim=hidden_dim)
        return TwoLayerNet(
            n_features,
            n_classes,
            hidden_dim=hidden_dim,
            rng=rng if rng is not None else np.random.default_rng(0),
        )
    raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")


def model_from_params(params: dict[str, NDArray[np.floating]]) -> SoftmaxRegression | TwoLayerNet:
    """The trained hypothesis whose parameters are ``params`` (used as they are, not copied).

    Parameters
    ----------
    params : dict
        ``{"theta": (n, k)}`` for softmax regression, or ``{"W1": (n, h), "W2": (h, k)}`` for
        the two-layer net; float32 (float64 is kept as it is).

    Raises
    ------
    ValueError
        Other keys, arrays that are not 2-d, or W1 and W2 that do not chain (W1's h columns
        must be W2's h rows).
    """
    for name, array in params.items():
        if np.ndim(array) != 2:
            raise ValueError(f"parameter {name!r} must be 2-d, got shape {np.shape(array)}")
    if set(params) == {"theta"}:
        theta = params["theta"]
        model = SoftmaxRegression(theta.shape[0], theta.shape[1], dtype=theta.dtype.type)
        model.params["theta"] = theta  # same shape and dtype
        return model
    if set(params) == {"W1", "W2"}:
        W1, W2 = params["W1"], params["W2"]
        if W1.shape[1] != W2.shape[0]:
            raise ValueError(
                f"W1 {W1.shape} and W2 {W2.shape} do not chain: need W1 (n, h), W2 (h, k)"
            )
        net = TwoLayerNet(
            W1.shape[0],
            W2.shape[1],
            hidden_dim=W1.shape[1],
            rng=np.random.default_rng(0),  # weights replaced just below
            dtype=W1.dtype.type,
        )
        net.params = {"W1": W1, "W2": W2}
        return net
    raise ValueError(
        f"parameters {sorted(params)} are neither softmax regression's ['theta'] nor the "
        "two-layer net's ['W1', 'W2']"
    )


def class_probabilities(model: Hypothesis, X: F32, *, chunk: int = 8192) -> F32:
    """Softmax of the logits of every row of ``X``: P(y = j | x), in chunks (bounded memory).

    Parameters
    ----------
    model : Hypothesis
        A trained hypothesis (e.g. from ``model_from_params``).
    X : ndarray of shape (m, n), float32
        One example per row (pixels scaled to [0, 1] for MNIST).
    chunk : int
        Rows per forward pass.

    Returns
    -------
    ndarray of shape (m, k), float32
        Each row sums to 1; its arg-max is the predicted class.
    """
    out = np.empty((X.shape[0], model.n_classes), dtype=np.float32)
    for start in range(0, X.shape[0], chunk):
        H = model.forward(X[start : start + chunk])  # (c, k), a buffer of the model's
        P = out[start : start + chunk]
        np.subtract(H, H.max(axis=1, keepdims=True), out=P)  # shift: exp stays finite
        np.exp(P, out=P)
        P /= P.sum(axis=1, keepdims=True)
    return out
