"""The training loop: E epochs of SGD, evaluating train and test loss and error after each one."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from softmax_lab.core.loss import classification_error, confusion_matrix, softmax_loss
from softmax_lab.core.model import Hypothesis
from softmax_lab.core.optim import batch_order, sgd_epoch
from softmax_lab.errors import TrainingError

__all__ = [
    "DivergenceError",
    "EpochMetrics",
    "TrainResult",
    "evaluate",
    "evaluate_groups",
    "seeded_rngs",
    "train",
]

EVAL_CHUNK = 8192  # rows per forward pass during evaluation: bounds the (rows, h) activations


@dataclass(frozen=True)
class EpochMetrics:
    """What the trainer measured after one epoch (losses are means over the set)."""

    epoch: int
    train_loss: float
    train_error: float
    test_loss: float
    test_error: float
    seconds: float  # wall time of the epoch: its SGD steps plus both evaluations

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class TrainResult:
    """The trained parameters (copies), one ``EpochMetrics`` per epoch, and the test set's
    confusion matrix (k, k) after the last epoch (``None`` when not measured)."""

    params: dict[str, NDArray[np.float32]]
    history: list[EpochMetrics]
    test_confusion: NDArray[np.int64] | None = None


class DivergenceError(TrainingError):
    """Training produced a non-finite loss or parameter; ``history`` holds the epochs before."""

    def __init__(self, *, epoch: int, lr: float, loss: float, history: list[EpochMetrics]):
        super().__init__(
            f"training diverged in epoch {epoch} with step size lr={lr:g} "
            f"(train loss {loss}); try a smaller optim.lr"
        )
        self.epoch, self.lr, self.loss, self.history = epoch, lr, loss, history


def seeded_rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators from one seed: (initialisation, shuffling)."""
    init_seq, shuffle_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init_seq), np.random.default_rng(shuffle_seq)


def evaluate_groups(
    model: Hypothesis,
    X: NDArray[np.float32],
    y: NDArray[np.integer],
    *,
    groups: int = 1,
    confusion: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean loss and error of each of ``groups`` stacked models on a whole set.

    Parameters
    ----------
    model : Hypothesis
        Its logits have ``groups * k`` columns: group j owns columns ``j*k:(j+1)*k``.
    X : ndarray of shape (m, n), float32
    y : ndarray of shape (m,), integer
    confusion : ndarray of shape (groups, k, k), int64, optional
        Zeros to fill with each group's confusion matrix (``loss.confusion_matrix``), from the
        same logits: a run's picture of it then costs no second pass over the set.

    Returns
    -------
    (loss, error) : two ndarrays of shape (groups,), float64
    """
    m = X.shape[0]
    loss_sum = np.zeros(groups)
    err_sum = np.zeros(groups)
    for start in range(0, m, EVAL_CHUNK):
        yc = y[start : start + EVAL_CHUNK]
        H = model.forward(X[start : start + EVAL_CHUNK])  # (c, groups·k)
        H3 = H.reshape(H.shape[0], groups, -1)  # (c, groups, k)
        for j in range(groups):
            loss_sum[j] += softmax_loss(H3[:, j], yc) * yc.shape[0]
            if confusion is None:
                err_sum[j] += classification_error(H3[:, j], yc) * yc.shape[0]
            else:
                pred = H3[:, j].argmax(axis=1)  # (c,)
                # the same float as classification_error's, so the metric does not change
                err_sum[j] += float(np.mean(pred != yc)) * yc.shape[0]
                confusion[j] += confusion_matrix(yc, pred, H3.shape[2])
    return loss_sum / m, err_sum / m


def evaluate(
    model: Hypothesis, X: NDArray[np.float32], y: NDArray[np.integer]
) -> tuple[float, float]:
    """Mean softmax loss and 0/1 error of ``model`` on (X, y); a pure function of its params."""
    loss, err = evaluate_groups(model, X, y)
    return float(loss[0]), float(err[0])


def train(
    model: Hypothesis,
    X_train: NDArray[np.float32],
    y_train: NDArray[np.integer],
    X_test: NDArray[np.float32],
    y_test: NDArray[np.integer],
    *,
    lr: float,
    batch_size: int,
    epochs: int,
    shuffle: bool = False,
    rng: np.random.Generator | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> TrainResult:
    """Train ``model`` by minibatch SGD and evaluate it after every epoch.

    Parameters
    ----------
    model : Hypothesis
        Trained in place; ``TrainResult.params`` holds copies of its final parameters.
    X_train, X_test : ndarray of shape (m, n), float32
    y_train, y_test : ndarray of shape (m,), integer
    lr : float
        Step size α > 0.
    batch_size : int
        B >= 1.
    epochs : int
        E >= 1.
    shuffle : bool
        Draw a new example order each epoch from ``rng``; ``False`` (the reference) keeps order.
    rng : numpy.random.Generator, optional
        Needed when ``shuffle`` is true.
    on_epoch : callable, optional
        Called with each epoch's ``EpochMetrics`` right after it is measured (e.g. to log it).

    Raises
    ------
    DivergenceError
        When a loss or parameter becomes non-finite; ``on_epoch`` has seen every finite epoch.
    """
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    history: list[EpochMetrics] = []
    confusion = None
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        # SGD over the batches; a diverging run overflows, which the finiteness check reports
        with np.errstate(over="ignore", invalid="ignore"):
            order = batch_order(X_train.shape[0], shuffle=shuffle, rng=rng)
            sgd_epoch(model, X_train, y_train, lr=lr, batch_size=batch_size, order=order)
            # evaluate on the full train and test sets (the test confusion after the last epoch)
            train_loss, train_err = evaluate(model, X_train, y_train)
            if epoch == epochs:
                confusion = np.zeros((1, model.n_classes, model.n_classes), dtype=np.int64)
            loss, err = evaluate_groups(model, X_test, y_test, confusion=confusion)
            test_loss, test_err = float(loss[0]), float(err[0])
        # stop on divergence instead of returning NaNs
        finite = all(np.isfinite(p).all() for p in model.params.values())
        if not (finite and math.isfinite(train_loss) and math.isfinite(test_loss)):
            raise DivergenceError(epoch=epoch, lr=lr, loss=train_loss, history=history)
        record = EpochMetrics(
            epoch, train_loss, train_err, test_loss, test_err, time.perf_counter() - t0
        )
        history.append(record)
        # log: hand the epoch to the caller (tracking, progress bar)
        if on_epoch is not None:
            on_epoch(record)
    return TrainResult(
        {k: v.copy() for k, v in model.params.items()},
        history,
        None if confusion is None else confusion[0],
    )
