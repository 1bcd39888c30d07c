"""``hydra/launcher=fused`` (the default for sweeps): fuse the jobs that can share their work.

Jobs of softmax regression that agree on everything but step size and epochs (dataset,
batch size, shuffling, seed, tracking) form a group. A group is trained once by
``softmax_lab.fused.train_fused``, yet every job still gets Hydra's own output directory and
its own MLflow run, with the same params, metrics and artifacts a separate run would have,
plus the tags ``sl.fused`` and ``sl.fused_group``. Any other job runs alone, exactly as under
``hydra/launcher=basic``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.utils import JobReturn, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from softmax_lab.cli import state
from softmax_lab.cli.convert import to_config
from softmax_lab.config import Config

__all__ = ["FusedLauncher", "FusedLauncherConf", "fusion_groups"]

log = logging.getLogger(__name__)


@dataclass
class FusedLauncherConf:
    _target_: str = "hydra_plugins.softmax_lab.FusedLauncher"


def _fusion_key(cfg: Config) -> tuple[Any, ...] | None:
    """What jobs must share to be trained side by side; ``None``: this job runs alone."""
    if cfg.model.name != "softmax":
        return None
    d, o, t = cfg.dataset, cfg.optim, cfg.tracking
    return (
        d.name,
        d.path,
        d.cache_dir,
        d.split_seed,
        o.batch_size,
        o.shuffle,
        cfg.seed,
        t.uri,
        t.experiment,
    )


def fusion_groups(configs: Sequence[Config]) -> list[list[int]]:
    """Job indices grouped for fused training, in order of each group's first job.

    Groups of one are jobs that run alone (another model, or nothing to share with).
    """
    groups: dict[Any, list[int]] = {}
    for i, cfg in enumerate(configs):
        key = _fusion_key(cfg)
        groups.setdefault(("alone", i) if key is None else key, []).append(i)
    return list(groups.values())


class FusedLauncher(Launcher):
    """Runs a sweep's jobs in this process, fusing compatible ones."""

    def __init__(self) -> None:
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def _job_config(self, overrides: Sequence[str], idx: int) -> DictConfig:
        """The composed config of one job: the sweeper's, when it already composed it."""
        assert self.hydra_context is not None and self.config is not None
        cfg = state.composed.pop(tuple(overrides), None)
        if cfg is None:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(cfg):
            cfg.hydra.job.id = idx
            cfg.hydra.job.num = idx
        return cfg

    def _run(self, cfg: DictConfig, task: TaskFunction) -> JobReturn:
        assert self.hydra_context is not None
        return run_job(
            hydra_context=self.hydra_context,
            task_function=task,
            config=cfg,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        setup_globals()
        assert self.task_function is not None
        cfgs = [self._job_config(o, initial_job_idx + i) for i, o in enumerate(job_overrides)]
        configs = [to_config(c) for c in cfgs]
        returns: dict[int, JobReturn] = {}
        for group in fusion_groups(configs):
            if len(group) == 1:
                returns[group[0]] = self._run(cfgs[group[0]], self.task_function)
            else:
                returns.update(self._run_fused(group, cfgs, configs))
        return [returns[i] for i in range(len(cfgs))]

    def _run_fused(
        self, group: list[int], cfgs: list[DictConfig], configs: list[Config]
    ) -> dict[int, JobReturn]:
        from softmax_lab.cli.hydra_app import job_context, report_outcome
        from softmax_lab.fused import plan_fused
        from softmax_lab.job import OpenJob, close_job, open_job, run_fused

        def open_task(cfg: DictConfig) -> OpenJob:
            return open_job(to_config(cfg), job_context())

        # open every job's run under its own Hydra output dir, as a separate run would
        rets = {i: self._run(cfgs[i], open_task) for i in group}
        jobs: dict[int, OpenJob] = {}
        for i, ret in rets.items():
            try:
                jobs[i] = ret.return_value
            except Exception as e:  # opening failed outright: leave the JobReturn as FAILED
                log.error("job %d could not start: %s", i, e)
        live = [i for i, job in jobs.items() if job.outcome is None and job.data is not None]
        for i, job in jobs.items():
            if i not in live:
                rets[i].return_value = close_job(job)
        if not live:
            return rets
        first = configs[live[0]]
        plan = plan_fused(
            [configs[i].optim.lr for i in live], [configs[i].optim.epochs for i in live]
        )
        group_id = uuid.uuid4().hex[:8]
        for j, i in enumerate(live):
            jobs[i].rec.set_tags(
                {"sl.fused": "true", "sl.fused_group": f"{group_id} {plan.describe(j)}"}
            )
        print(
            f"[fused group {group_id}] {len(live)} jobs, {len(plan.lrs)} step sizes side by side, "
            f"{max(plan.epochs)} epochs, batch size {first.optim.batch_size}: "
            + ", ".join(f"lr={configs[i].optim.lr} E={configs[i].optim.epochs}" for i in live),
            flush=True,
        )
        t0 = time.perf_counter()
        outcomes = run_fused(plan, {j: jobs[i] for j, i in enumerate(live)})
        log.info("fused group %s trained in %.2f s", group_id, time.perf_counter() - t0)
        for j, i in enumerate(live):
            rets[i].return_value = outcomes[j]
            report_outcome(outcomes[j])
        return rets
