"""Fused training: several softmax-regression jobs that differ only in step size and epochs,
trained side by side as one stacked parameter block.

Jobs sharing data, batch size, shuffling and seed see the same batches in the same order, so K
distinct step sizes can be trained as θ ∈ R^{n×(K·k)}: each minibatch costs one wide GEMM
instead of K skinny ones (wide GEMMs run several times more efficiently than n×10 ones).
Jobs with the same step size follow the same trajectory, so they share one column block and
each takes its own epochs' prefix of the history. A block whose jobs are all done leaves the
stack; a block that diverges fails its jobs alone and leaves the stack too.

Results equal separate runs to float32 rounding (different GEMM widths sum in different
orders) and are bitwise repeatable for the same ``FusedPlan``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from softmax_lab.core.model import SoftmaxRegression
from softmax_lab.core.optim import batch_order, sgd_epoch
from softmax_lab.core.training import DivergenceError, EpochMetrics, evaluate_groups, seeded_rngs

if TYPE_CHECKING:
    from softmax_lab.data.dataset import Dataset

__all__ = [
    "FusedJobResult",
    "FusedPlan",
    "plan_fused",
    "replay_plan",
    "train_fused",
    "train_group",
]


@dataclass(frozen=True)
class FusedPlan:
    """Which column block each job uses: ``lrs[column[j]]`` is job j's step size.

    ``epochs[c]`` is how long block c trains: the most epochs any of its jobs asked for.
    """

    lrs: tuple[float, ...]
    epochs: tuple[int, ...]
    column: tuple[int, ...]  # per job
    job_epochs: tuple[int, ...]  # per job

    def describe(self, j: int) -> str:
        """A compact, exact record of the plan and job j's place in it (a run tag)."""
        return (
            f"column={self.column[j]} lrs={','.join(repr(v) for v in self.lrs)} "
            f"epochs={','.join(map(str, self.epochs))}"
        )


@dataclass
class FusedJobResult:
    """One job's share: its history up to its own epochs, its θ, or the divergence."""

    history: list[EpochMetrics] = field(default_factory=list)
    theta: NDArray[np.float32] | None = None
    confusion: NDArray[np.int64] | None = None  # (k, k) on the test set after its last epoch
    error: DivergenceError | None = None


def plan_fused(lrs: Sequence[float], epochs: Sequence[int]) -> FusedPlan:
    """Group jobs by step size (same α ⇒ same trajectory): one column block per distinct α."""
    if len(lrs) != len(epochs) or not lrs:
        raise ValueError(
            f"need one epochs per lr and at least one job, got {len(lrs)}/{len(epochs)}"
        )
    distinct = sorted(set(float(v) for v in lrs))
    column = tuple(distinct.index(float(v)) for v in lrs)
    block_epochs = [0] * len(distinct)
    for c, e in zip(column, epochs, strict=True):
        block_epochs[c] = max(block_epochs[c], int(e))
    return FusedPlan(tuple(distinct), tuple(block_epochs), column, tuple(int(e) for e in epochs))


def train_fused(
    X_train: NDArray[np.float32],
    y_train: NDArray[np.integer],
    X_test: NDArray[np.float32],
    y_test: NDArray[np.integer],
    plan: FusedPlan,
    *,
    batch_size: int,
    n_classes: int,
    shuffle: bool = False,
    rng: np.random.Generator | None = None,
    on_epoch: Callable[[int, EpochMetrics], None] | None = None,
    on_job_end: Callable[[int, FusedJobResult], None] | None = None,
) -> list[FusedJobResult]:
    """Train every job of ``plan`` at once; return one ``FusedJobResult`` per job.

    ``on_epoch(j, metrics)`` is called for job j after each of its epochs (so tracking can
    write as it goes), and ``on_job_end(j, result)`` once job j's result is final — after its
    last epoch, or when its block diverged — while the longer jobs train on. ``epoch_seconds``
    of a fused epoch is its wall time divided by the number of blocks trained in it: each
    job's share of the shared work.
    """
    k, n = n_classes, X_train.shape[1]
    results = [FusedJobResult() for _ in plan.column]
    jobs_of = [[j for j, c in enumerate(plan.column) if c == b] for b in range(len(plan.lrs))]
    active = list(range(len(plan.lrs)))  # blocks still training, in stack order
    model = SoftmaxRegression(n, k * len(active))
    for epoch in range(1, max(plan.epochs) + 1):
        t0 = time.perf_counter()
        # one pass of SGD over the stacked blocks, each with its own step size
        lrs = np.array([plan.lrs[b] for b in active], dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            order = batch_order(X_train.shape[0], shuffle=shuffle, rng=rng)
            sgd_epoch(model, X_train, y_train, lr=lrs, batch_size=batch_size, order=order)
            train_loss, train_err = evaluate_groups(model, X_train, y_train, groups=len(active))
            confusion = np.zeros((len(active), k, k), dtype=np.int64)  # for the jobs ending now
            test_loss, test_err = evaluate_groups(
                model, X_test, y_test, groups=len(active), confusion=confusion
            )
        seconds = (time.perf_counter() - t0) / len(active)
        theta = model.params["theta"].reshape(n, len(active), k)  # (n, blocks, k) view
        keep = []
        for i, b in enumerate(active):
            finite = bool(np.isfinite(theta[:, i]).all()) and all(
                math.isfinite(v) for v in (train_loss[i], test_loss[i])
            )
            for j in jobs_of[b]:
                if epoch > plan.job_epochs[j]:
                    continue
                r = results[j]
                if not finite:  # this block diverged: its jobs fail, the others go on
                    r.error = DivergenceError(
                        epoch=epoch, lr=plan.lrs[b], loss=float(train_loss[i]), history=r.history
                    )
                    if on_job_end is not None:
                        on_job_end(j, r)
                    continue
                m = EpochMetrics(
                    epoch,
                    float(train_loss[i]),
                    float(train_err[i]),
                    float(test_loss[i]),
                    float(test_err[i]),
                    seconds,
                )
                r.history.append(m)
                if epoch == plan.job_epochs[j]:
                    r.theta = theta[:, i].copy()  # (n, k): the job's own final θ
                    r.confusion = confusion[i].copy()
                if on_epoch is not None:
                    on_epoch(j, m)
                if epoch == plan.job_epochs[j] and on_job_end is not None:
                    on_job_end(j, r)
            if finite and epoch < plan.epochs[b]:
                keep.append(i)
        if len(keep) < len(active):
            # blocks that are done or diverged leave the stack: later GEMMs are narrower
            active = [active[i] for i in keep]
            if not active:
                break
            narrower = SoftmaxRegression(n, k * len(active))
            narrower.params["theta"][:] = theta[:, keep].reshape(n, -1)
            model = narrower
    return results


def train_group(
    data: Dataset,
    plan: FusedPlan,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    on_epoch: Callable[[int, EpochMetrics], None] | None = None,
    on_job_end: Callable[[int, FusedJobResult], None] | None = None,
) -> list[FusedJobResult]:
    """``train_fused`` on a data set's train and test split, shuffling (when asked) with the
    shuffling generator of ``seed`` (``trainer.seeded_rngs``), as each job alone would."""
    return train_fused(
        data.X_train,
        data.y_train,
        data.X_test,
        data.y_test,
        plan,
        batch_size=batch_size,
        n_classes=data.n_classes,
        shuffle=shuffle,
        rng=seeded_rngs(seed)[1],
        on_epoch=on_epoch,
        on_job_end=on_job_end,
    )


def replay_plan(description: str, job_epochs: int) -> tuple[FusedPlan, int]:
    """The plan a fused run was trained in, from its ``sl.fused_group`` tag, plus the job.

    Returns a plan with one job per block of the original group (so every block trains for the
    same epochs, in the same stack, as before) and one more job, the rerun's, sharing the
    original column; and that job's index. Training it repeats the original bit for bit.
    """
    fields = dict(part.split("=", 1) for part in description.split() if "=" in part)
    try:
        column = int(fields["column"])
        lrs = [float(v) for v in fields["lrs"].split(",")]
        epochs = [int(v) for v in fields["epochs"].split(",")]
    except (KeyError, ValueError) as err:
        raise ValueError(f"not a fused-group description: {description!r}") from err
    if not 0 <= column < len(lrs) == len(epochs) or not 1 <= job_epochs <= epochs[column]:
        raise ValueError(
            f"inconsistent fused-group description {description!r} for {job_epochs} epochs"
        )
    plan = plan_fused([*lrs, lrs[column]], [*epochs, job_epochs])
    if plan.lrs != tuple(lrs):
        raise ValueError(f"fused-group step sizes must be distinct and sorted: {description!r}")
    return plan, len(lrs)
