"""The training loop: E epochs of SGD, evaluating train and test loss and error after each one
(and validation loss and error, given a validation set).

The loop (``train_stack``) trains a *stack* of K models side by side, as K column blocks of one
parameter θ ∈ R^{n×(K·k)}: block c owns columns ``c*k:(c+1)*k`` of θ and of the logits Xθ, and
has its own step size and number of epochs. Jobs read blocks: several jobs may read one block
(same step size, same trajectory), each taking its own epochs' prefix of the block's history.
A block leaves the stack when all its jobs have ended: their epochs done, or its numbers
diverged (its jobs fail, the others go on), or a judge stopped them early ("pruned", as a
sweeper with early stopping asks after any epoch); later GEMMs are narrower. ``StackPlan``
says which block is which.

``train`` is the one-job, one-block case, for any hypothesis (the two-layer net never stacks):
its block is the whole model. ``softmax_lab.fusion`` decides which jobs of a sweep share a stack.

A job whose losses stay finite can still have exploded: ``detect_explosion`` judges its history
once it has ended (final train loss above a bound, by default ln k), the same for a job trained
alone or in a stack; what to do about it (flag the run, or fail it) is the caller's choice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from softmax_lab.core.constraints import Interval, check_params
from softmax_lab.core.loss import classification_error, confusion_matrix, softmax_loss
from softmax_lab.core.model import Hypothesis, SoftmaxRegression
from softmax_lab.core.optim import batch_order, sgd_epoch
from softmax_lab.errors import TrainingError

__all__ = [
    "LOSS_RTOL",
    "ON_EXPLODE",
    "DivergenceError",
    "EpochEnd",
    "EpochMetrics",
    "ExplosionError",
    "StackPlan",
    "TrainResult",
    "detect_explosion",
    "evaluate",
    "evaluate_groups",
    "seeded_rngs",
    "train",
    "train_stack",
]

F32 = NDArray[np.float32]
ON_EXPLODE = ("flag", "fail")  # what a run that exploded becomes: FINISHED and tagged, or FAILED
# float32 rounding of a mean loss, relative: a collapsed net (all logits 0) has loss ln k exactly,
# computed as ln k ± this, and counts as not below ln k
LOSS_RTOL = 1e-6
EVAL_CHUNK = 8192  # rows per forward pass during evaluation: bounds the (rows, h) activations
_PARAMETER_CONSTRAINTS = {
    "lr": Interval(float, 0, None, closed="neither"),
    "epochs": Interval(int, 1, None, closed="left"),
}


@dataclass(frozen=True)
class EpochMetrics:
    """What the trainer measured after one epoch (losses are means over the set)."""

    epoch: int
    train_loss: float
    train_error: float
    test_loss: float
    test_error: float
    seconds: float  # wall time of the epoch (SGD and the evaluations) / the blocks trained
    val_loss: float | None = None  # on the validation set; None: trained without one
    val_error: float | None = None

    def as_dict(self) -> dict[str, float]:
        """The measured values by field name; the validation ones only when measured."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class EpochEnd:
    """Every job of a stack has been measured for ``epoch`` and handed over: the moment a judge
    may stop some of them (sent by a lockstep ``fusion.worker.FusedWorker``)."""

    epoch: int


class DivergenceError(TrainingError):
    """Training produced a non-finite loss or parameter; ``history`` holds the epochs before."""

    def __init__(self, *, epoch: int, lr: float, loss: float, history: list[EpochMetrics]):
        super().__init__(
            f"training diverged in epoch {epoch} with step size lr={lr:g} "
            f"(train loss {loss}); try a smaller optim.lr"
        )
        self.epoch, self.lr, self.loss, self.history = epoch, lr, loss, history

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only fields: pickled as such, so a result sent from another process (a Ray
        # task) keeps its error
        rebuild = partial(
            DivergenceError, epoch=self.epoch, lr=self.lr, loss=self.loss, history=self.history
        )
        return (rebuild, ())


class ExplosionError(TrainingError):
    """Training ended with finite numbers but a final train loss not below ``bound``: no better
    than predicting every class alike (by default), as with a step size too large to learn with.

    Not raised by the trainer: ``detect_explosion`` returns it, and a job either records it as a
    flag on a FINISHED run or fails with it.
    """

    def __init__(self, *, epoch: int, loss: float, bound: float, n_classes: int, default: bool):
        why = (
            f"ln({n_classes}) = {bound:.5g}, the loss of predicting all {n_classes} classes "
            "alike (optim.max_train_loss=null)"
            if default
            else f"optim.max_train_loss={bound:g}"
        )
        super().__init__(
            f"training exploded: final train loss {loss:.5g} (epoch {epoch}) is not below {why}; "
            "try a smaller optim.lr"
        )
        self.epoch, self.loss, self.bound = epoch, loss, bound


def detect_explosion(
    history: Sequence[EpochMetrics], *, n_classes: int, max_train_loss: float | None = None
) -> ExplosionError | None:
    """Whether a job that ended with finite losses exploded all the same.

    Parameters
    ----------
    history : sequence of EpochMetrics
        The job's epochs, in order (its last one is judged).
    n_classes : int
        k, the model's number of classes.
    max_train_loss : float, optional
        A job learned if its final train loss is below this; ``None``: ln k, the mean loss of
        predicting every class with probability 1/k, which is exactly where softmax regression
        from θ = 0 starts, and where a two-layer net whose ReLUs all died (logits 0) sits. A
        final loss not below it is no better than never training. Equal within float32
        rounding (``LOSS_RTOL``) counts as not below.

    Returns
    -------
    ExplosionError or None
        The explosion (epoch, loss, bound, and a message saying them), or ``None``.
    """
    if not history:
        return None
    bound = math.log(n_classes) if max_train_loss is None else float(max_train_loss)
    last = history[-1]
    if not last.train_loss >= bound * (1 - LOSS_RTOL):  # also None for a NaN loss
        return None
    return ExplosionError(
        epoch=last.epoch,
        loss=last.train_loss,
        bound=bound,
        n_classes=n_classes,
        default=max_train_loss is None,
    )


@dataclass(frozen=True)
class TrainResult:
    """One job's result: its trained parameters (copies), one ``EpochMetrics`` per epoch, and
    the test set's confusion matrix (k, k) after its last epoch (``None`` when not measured);
    or, when its block diverged, ``error``, with the epochs before it and no parameters.
    ``stopped_at``: the epoch after which a judge stopped the job early (its parameters and
    history are those of that epoch); ``None`` when it ran all its epochs, or diverged."""

    params: dict[str, NDArray[np.float32]]
    history: list[EpochMetrics]
    test_confusion: NDArray[np.int64] | None = None
    error: DivergenceError | None = None
    stopped_at: int | None = None


@dataclass(frozen=True)
class StackPlan:
    """What a stack trains: block c steps with ``lrs[c]`` for ``epochs[c]`` epochs, and job j
    reads block ``column[j]`` for its first ``job_epochs[j]`` epochs.

    Stacking K blocks makes each minibatch one wide GEMM (n×K·k) instead of K skinny (n×k)
    ones. A block trains as long as its longest job: ``epochs[c]`` is the most epochs any of
    its jobs asks for, so every block has a job.

    Raises
    ------
    ValueError
        When the lengths disagree, a step size is not > 0, a job asks for no epoch, a job reads
        no block, or a block's epochs are not its longest job's.
    """

    lrs: tuple[float, ...]  # per block
    epochs: tuple[int, ...]  # per block
    column: tuple[int, ...]  # per job
    job_epochs: tuple[int, ...]  # per job

    def __post_init__(self) -> None:
        blocks = len(self.lrs)
        if len(self.epochs) != blocks or len(self.job_epochs) != len(self.column) or not blocks:
            raise ValueError(f"a plan needs epochs per block and per job, and a job; got {self}")
        for lr in self.lrs:
            check_params(_PARAMETER_CONSTRAINTS, lr=lr)
        for e in self.job_epochs:
            check_params(_PARAMETER_CONSTRAINTS, epochs=e)
        jobs = list(zip(self.column, self.job_epochs, strict=True))
        longest = tuple(max((e for c, e in jobs if c == b), default=0) for b in range(blocks))
        if not all(0 <= c < blocks for c in self.column) or longest != tuple(self.epochs):
            raise ValueError(
                f"each job must read a block, and each block train for its longest job's "
                f"epochs; got {self}"
            )

    def describe(self, j: int) -> str:
        """A compact, exact record of the plan and job j's place in it (a run tag; read back by
        ``softmax_lab.fusion.stacked.replay_plan``)."""
        return (
            f"column={self.column[j]} lrs={','.join(repr(v) for v in self.lrs)} "
            f"epochs={','.join(map(str, self.epochs))}"
        )


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


def _block(params: dict[str, F32], i: int, blocks: int) -> dict[str, F32]:
    """Block i's parameters, as views: in a stack of one block every parameter of the model,
    else θ's columns ``i*k:(i+1)*k``."""
    if blocks == 1:
        return params
    theta = params["theta"]
    return {"theta": theta.reshape(theta.shape[0], blocks, -1)[:, i]}  # (n, k)


def _narrowed(model: Hypothesis, keep: list[int], blocks: int) -> SoftmaxRegression:
    """A new stack of the blocks ``keep`` of ``model`` (a stack of ``blocks``), θ copied."""
    theta = model.params["theta"]
    n, width = theta.shape
    narrower = SoftmaxRegression(n, width // blocks * len(keep))
    narrower.params["theta"][:] = theta.reshape(n, blocks, -1)[:, keep].reshape(n, -1)
    return narrower


def _stopped(stop: Collection[int], ended: dict[int, TrainResult], jobs: int) -> list[int]:
    """The jobs of ``stop`` that have not ended, in order; a job the plan lacks is an error."""
    wrong = [j for j in stop if not 0 <= j < jobs]
    if wrong:
        raise ValueError(f"the judge stopped jobs {wrong}, but the plan has jobs 0..{jobs - 1}")
    return sorted(set(stop) - ended.keys())


def train_stack(
    model: Hypothesis,
    X_train: NDArray[np.float32],
    y_train: NDArray[np.integer],
    X_test: NDArray[np.float32],
    y_test: NDArray[np.integer],
    plan: StackPlan,
    *,
    batch_size: int,
    shuffle: bool = False,
    rng: np.random.Generator | None = None,
    X_val: NDArray[np.float32] | None = None,
    y_val: NDArray[np.integer] | None = None,
    on_epoch: Callable[[int, EpochMetrics], None] | None = None,
    on_job_end: Callable[[int, TrainResult], None] | None = None,
    judge: Callable[[int], Collection[int]] | None = None,
) -> list[TrainResult]:
    """Train every block of ``plan`` by minibatch SGD, evaluating it after every epoch.

    Parameters
    ----------
    model : Hypothesis
        The stack, trained in place: its logits have K·k columns for K = ``len(plan.lrs)``
        blocks. With K > 1 it is a ``SoftmaxRegression`` (only θ splits into column blocks),
        e.g. zeros ``SoftmaxRegression(n, K * k)``, replaced by narrower copies as blocks leave.
    X_train, X_test : ndarray of shape (m, n), float32
    y_train, y_test : ndarray of shape (m,), integer
    plan : StackPlan
    batch_size : int
        B >= 1, shared by every block.
    shuffle : bool
        Draw a new example order each epoch from ``rng``; ``False`` (the reference) keeps order.
    rng : numpy.random.Generator, optional
        Needed when ``shuffle`` is true.
    X_val : ndarray of shape (m_val, n), float32, optional
        A validation set, evaluated after every epoch like the test set (``val_loss``,
        ``val_error`` of ``EpochMetrics``); training never sees it.
    y_val : ndarray of shape (m_val,), integer, optional
        Its labels; given exactly when ``X_val`` is.
    on_epoch : callable, optional
        ``on_epoch(j, metrics)`` after each of job j's epochs, right after it is measured (e.g.
        to log it as training goes).
    on_job_end : callable, optional
        ``on_job_end(j, result)`` once job j's result is final (after its last epoch, or when
        its block diverged, or a judge stopped it), while the longer jobs train on.
    judge : callable, optional
        ``judge(epoch)`` once after each epoch, after that epoch's ``on_epoch`` and
        ``on_job_end`` calls for every job: the plan jobs to stop now (those that have ended
        already are ignored). A stopped job ends at once with its block's parameters after
        this epoch, its history so far, the test confusion if this epoch measured it (else
        ``None``) and ``stopped_at=epoch``. A block all of whose jobs have ended leaves the
        stack, as a finished block does.

    Returns
    -------
    list of TrainResult
        One per job: its block's parameters after its own last epoch (every parameter for a
        stack of one block, else ``theta`` of shape (n, k)), its epochs and its test confusion
        then; or its block's ``DivergenceError``. ``EpochMetrics.seconds`` is the epoch's wall
        time divided by the blocks trained in it: each block's share of the shared work.
    """
    if len(plan.lrs) > 1 and not isinstance(model, SoftmaxRegression):
        raise TypeError(f"only softmax regression stacks blocks, got {type(model).__name__}")
    if model.n_classes % len(plan.lrs):
        raise ValueError(f"{len(plan.lrs)} blocks need K·k logits, got {model.n_classes}")
    if (X_val is None) != (y_val is None):
        raise ValueError("X_val and y_val must be given together or not at all")
    k = model.n_classes // len(plan.lrs)
    jobs_of = [[j for j, c in enumerate(plan.column) if c == b] for b in range(len(plan.lrs))]
    history: list[list[EpochMetrics]] = [[] for _ in plan.column]  # per job
    ended: dict[int, TrainResult] = {}
    active = list(range(len(plan.lrs)))  # blocks still in the stack, in stack order
    for epoch in range(1, max(plan.epochs) + 1):
        t0, K = time.perf_counter(), len(active)
        # one step size per block; a stack of one takes sgd_epoch's scalar path, bit for bit
        # what a (1,) vector gives (tested) and a few % faster on small batches
        lr = plan.lrs[active[0]] if K == 1 else np.array([plan.lrs[b] for b in active], np.float32)
        # a diverging block overflows, which the finite check reports
        with np.errstate(over="ignore", invalid="ignore"):
            # batch order, then one pass of SGD over the whole stack
            order = batch_order(X_train.shape[0], shuffle=shuffle, rng=rng)
            sgd_epoch(model, X_train, y_train, lr=lr, batch_size=batch_size, order=order)
            # evaluate every block on the full train and test sets; the test confusion is
            # counted only in an epoch where a job ends (the one its picture shows)
            train_loss, train_err = evaluate_groups(model, X_train, y_train, groups=K)
            val = None  # the validation set, held out of training, is measured like the test set
            if X_val is not None and y_val is not None:
                val = evaluate_groups(model, X_val, y_val, groups=K)
            confusion = np.zeros((K, k, k), dtype=np.int64)
            count = confusion if epoch in plan.job_epochs else None
            test_loss, test_err = evaluate_groups(model, X_test, y_test, groups=K, confusion=count)
        seconds = (time.perf_counter() - t0) / K  # each block's share of the epoch
        for i, b in enumerate(active):
            params = _block(model.params, i, K)
            # finite check: a diverged block fails its own jobs, the others go on
            finite = all(np.isfinite(p).all() for p in params.values()) and (
                math.isfinite(train_loss[i]) and math.isfinite(test_loss[i])
            )
            m = EpochMetrics(
                epoch,
                float(train_loss[i]),
                float(train_err[i]),
                float(test_loss[i]),
                float(test_err[i]),
                seconds,
                *(() if val is None else (float(val[0][i]), float(val[1][i]))),
            )
            for j in jobs_of[b]:
                if j in ended:
                    continue  # this job has taken its prefix of the block, or was stopped
                # metrics: the job's history, and its result once final
                if not finite:
                    error = DivergenceError(
                        epoch=epoch, lr=plan.lrs[b], loss=m.train_loss, history=history[j]
                    )
                    ended[j] = TrainResult({}, history[j], None, error)
                else:
                    history[j].append(m)
                    if epoch == plan.job_epochs[j]:
                        copies = {name: p.copy() for name, p in params.items()}
                        ended[j] = TrainResult(copies, history[j], confusion[i].copy())
                # hand them to the caller (tracking, progress bar) as they come
                if finite and on_epoch is not None:
                    on_epoch(j, m)
                if j in ended and on_job_end is not None:
                    on_job_end(j, ended[j])
        # stop: the jobs a judge ends now, with their block as this epoch left it
        if judge is not None:
            for j in _stopped(judge(epoch), ended, len(plan.column)):
                i = active.index(plan.column[j])
                copies = {name: p.copy() for name, p in _block(model.params, i, K).items()}
                cm = None if count is None else confusion[i].copy()
                ended[j] = TrainResult(copies, history[j], cm, stopped_at=epoch)
                if on_job_end is not None:
                    on_job_end(j, ended[j])
        # leave the stack: blocks all of whose jobs have ended (done, diverged or stopped);
        # later GEMMs are narrower
        keep = [i for i, b in enumerate(active) if any(j not in ended for j in jobs_of[b])]
        if len(keep) < K:
            active = [active[i] for i in keep]
            if not active:
                break
            model = _narrowed(model, keep, K)
    return [ended[j] for j in range(len(plan.column))]


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
    X_val: NDArray[np.float32] | None = None,
    y_val: NDArray[np.integer] | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    should_stop: Callable[[EpochMetrics], bool] | None = None,
) -> TrainResult:
    """Train ``model`` by minibatch SGD and evaluate it after every epoch: ``train_stack`` with
    one job and one block, the whole model.

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
    X_val : ndarray of shape (m_val, n), float32, optional
        A validation set, evaluated after every epoch (``val_loss``, ``val_error``).
    y_val : ndarray of shape (m_val,), integer, optional
        Its labels; given exactly when ``X_val`` is.
    on_epoch : callable, optional
        Called with each epoch's ``EpochMetrics`` right after it is measured (e.g. to log it).
    should_stop : callable, optional
        Called with each epoch's ``EpochMetrics`` after ``on_epoch``; ``True`` stops training
        after that epoch (the result's ``stopped_at``), e.g. a sweeper pruning a poor trial.

    Raises
    ------
    DivergenceError
        When a loss or parameter becomes non-finite; ``on_epoch`` has seen every finite epoch.
    """

    stop: list[int] = []  # [0] once should_stop said so: what the judge hands the loop

    def each_epoch(_: int, m: EpochMetrics) -> None:
        if on_epoch is not None:
            on_epoch(m)
        if should_stop is not None and should_stop(m):
            stop.append(0)

    plan = StackPlan((lr,), (epochs,), (0,), (epochs,))
    (result,) = train_stack(
        model,
        X_train,
        y_train,
        X_test,
        y_test,
        plan,
        batch_size=batch_size,
        shuffle=shuffle,
        rng=rng,
        X_val=X_val,
        y_val=y_val,
        on_epoch=each_epoch,
        judge=None if should_stop is None else (lambda _: stop),
    )
    if result.error is not None:
        raise result.error
    return result
