"""Fused training: several softmax-regression jobs that differ only in step size and epochs,
trained side by side as one stack (``softmax_lab.core.training.train_stack``).

Jobs sharing data, batch size, shuffling and seed see the same batches in the same order, so
their K distinct step sizes can train as the K column blocks of one stack. Jobs with the same
step size follow the same trajectory, so they read one block, each its own epochs' prefix.

Results equal separate runs to float32 rounding (different GEMM widths sum in different
orders) and are bitwise repeatable for the same ``StackPlan``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from softmax_lab.core.model import SoftmaxRegression
from softmax_lab.core.training import EpochMetrics, StackPlan, TrainResult, seeded_rngs, train_stack

if TYPE_CHECKING:
    from softmax_lab.data.dataset import Dataset

__all__ = ["plan_fused", "replay_plan", "train_group"]


def plan_fused(lrs: Sequence[float], epochs: Sequence[int]) -> StackPlan:
    """The stack of a group of jobs (job j: step size ``lrs[j]``, ``epochs[j]`` epochs): one
    block per distinct step size (same α ⇒ same trajectory), in increasing order."""
    if len(lrs) != len(epochs) or not lrs:
        raise ValueError(
            f"need one epochs per lr and at least one job, got {len(lrs)}/{len(epochs)}"
        )
    distinct = sorted(set(float(v) for v in lrs))
    column = tuple(distinct.index(float(v)) for v in lrs)
    block_epochs = [0] * len(distinct)
    for c, e in zip(column, epochs, strict=True):
        block_epochs[c] = max(block_epochs[c], int(e))
    return StackPlan(tuple(distinct), tuple(block_epochs), column, tuple(int(e) for e in epochs))


def train_group(
    data: Dataset,
    plan: StackPlan,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    on_epoch: Callable[[int, EpochMetrics], None] | None = None,
    on_job_end: Callable[[int, TrainResult], None] | None = None,
    judge: Callable[[int], Collection[int]] | None = None,
) -> list[TrainResult]:
    """Train a group's stack on a data set's train and test split (and its validation part, if
    any), from θ = 0, shuffling (when
    asked) with the shuffling generator of ``seed`` (``seeded_rngs``), as each job alone would.

    ``on_epoch``, ``on_job_end`` and ``judge`` (which jobs to stop early after an epoch) are
    those of ``train_stack``; each job's result holds its own θ, (n, k), under ``"theta"``.
    """
    return train_stack(
        SoftmaxRegression(data.n_features, data.n_classes * len(plan.lrs)),
        data.X_train,
        data.y_train,
        data.X_test,
        data.y_test,
        plan,
        batch_size=batch_size,
        shuffle=shuffle,
        rng=seeded_rngs(seed)[1],
        X_val=data.X_val,
        y_val=data.y_val,
        on_epoch=on_epoch,
        on_job_end=on_job_end,
        judge=judge,
    )


def replay_plan(description: str, job_epochs: int) -> tuple[StackPlan, int]:
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
