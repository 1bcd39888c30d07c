"""Which jobs of a sweep can be fused, and starting a fused group's training.

Jobs of softmax regression whose configs agree on every key but step size and epochs (and
``resume``, which only says whether to skip finished jobs, and the explosion check's
``optim.max_train_loss`` and ``optim.on_explode``, which judge a job once it has ended) form a
group; ``group_plan`` stacks their step sizes and ``start_worker`` trains the group in a child
process (``softmax_lab.fusion.worker``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from softmax_lab.config.schema import Config, flatten

if TYPE_CHECKING:
    from softmax_lab.core.training import StackPlan
    from softmax_lab.data.dataset import Dataset
    from softmax_lab.fusion.worker import FusedWorker

__all__ = ["fusion_groups", "group_plan", "start_worker"]

# the keys in which the jobs of a group may differ: each job reads its own step size's block of
# the stack for its own epochs (``resume`` does not change what a job computes, nor do the
# explosion bound and policy, which judge a job's history once it has ended)
_MAY_DIFFER = ("optim.lr", "optim.epochs", "optim.max_train_loss", "optim.on_explode", "resume")


def _fusion_key(cfg: Config) -> tuple[tuple[str, Any], ...] | None:
    """What jobs must share to be trained side by side: every other key of the config,
    ``tracking`` included (a group's runs are recorded together); ``None``: this job runs
    alone. Derived from the whole config, so a key added later keeps jobs apart."""
    if cfg.model.name != "softmax":
        return None
    # flatten leaves tracking out (not part of what a run is), but a group's runs share it
    keys = {**flatten(cfg), **{f"tracking.{k}": v for k, v in asdict(cfg.tracking).items()}}
    return tuple((k, v) for k, v in keys.items() if k not in _MAY_DIFFER)


def fusion_groups(configs: Sequence[Config]) -> list[list[int]]:
    """Job indices grouped for fused training, in order of each group's first job.

    Groups of one are jobs that run alone (another model, or nothing to share with).
    """
    groups: dict[Any, list[int]] = {}
    for i, cfg in enumerate(configs):
        key = _fusion_key(cfg)
        groups.setdefault(("alone", i) if key is None else key, []).append(i)
    return list(groups.values())


def group_plan(group: Sequence[int], configs: Sequence[Config]) -> StackPlan:
    """The plan of a whole group, in group order: plan job j is sweep job ``group[j]``."""
    from softmax_lab.fusion.stacked import plan_fused

    return plan_fused(
        [configs[i].optim.lr for i in group], [configs[i].optim.epochs for i in group]
    )


def start_worker(
    group: Sequence[int], configs: Sequence[Config], data: Dataset, *, lockstep: bool = False
) -> FusedWorker:
    """Start training a group on its ``data`` (the first job's ``dataset``, loaded) in a child
    process, with the group's shared batch size, shuffling and seed (the first job's);
    ``lockstep``: waiting after each epoch for which jobs to stop (``FusedWorker``)."""
    from softmax_lab.fusion.worker import FusedWorker

    first = configs[group[0]]
    return FusedWorker(
        data,
        group_plan(group, configs),
        batch_size=first.optim.batch_size,
        shuffle=first.optim.shuffle,
        seed=first.seed,
        name=f"fused group of jobs {group[0]}..{group[-1]}",
        lockstep=lockstep,
    )
