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
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hydra.core.utils import JobReturn, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from softmax_lab.cli import state
from softmax_lab.cli.convert import to_config
from softmax_lab.cli.hydra_app import report_outcome
from softmax_lab.cli.hydra_job import run_job_light
from softmax_lab.config import Config
from softmax_lab.timings import phase

if TYPE_CHECKING:
    from softmax_lab.fused import FusedPlan
    from softmax_lab.job import JobOutcome, OpenJob

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
        groups = fusion_groups(configs)
        returns: dict[int, JobReturn] = {}
        self._run_groups([g for g in groups if len(g) > 1], cfgs, configs, returns)
        for group in groups:
            if len(group) == 1:
                returns[group[0]] = self._run(cfgs[group[0]], self.task_function)
        return [returns[i] for i in range(len(cfgs))]

    def _open_group(
        self,
        group: list[int],
        cfgs: list[DictConfig],
        configs: list[Config],
        returns: dict[int, JobReturn],
        opened: list[OpenJob],
    ) -> _OpenGroup | None:
        """Open each job's run under its own Hydra output dir, as a separate run would; plan
        the group's training. None when no job of the group could start."""
        from softmax_lab.cli.hydra_app import job_context
        from softmax_lab.fused import plan_fused
        from softmax_lab.job import close_job, open_job

        def open_task(cfg: DictConfig) -> OpenJob:
            config = to_config(cfg)
            job = open_job(config, job_context(config))
            opened.append(job)
            return job

        assert self.hydra_context is not None
        with phase("setup"):  # Hydra's job dirs and the runs' opening, apart from store writes
            rets = {i: run_job_light(self.hydra_context, open_task, cfgs[i]) for i in group}
        returns.update(rets)
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
            return None
        first = configs[live[0]]
        plan = plan_fused(
            [configs[i].optim.lr for i in live], [configs[i].optim.epochs for i in live]
        )
        group_id = uuid.uuid4().hex[:8]
        for j, i in enumerate(live):
            jobs[i].rec.set_tags(
                {"sl.fused": "true", "sl.fused_group": f"{group_id} {plan.describe(j)}"},
                defer=True,
            )
        print(
            f"[fused group {group_id}] {len(live)} jobs, {len(plan.lrs)} step sizes side by side, "
            f"{max(plan.epochs)} epochs, batch size {first.optim.batch_size}: "
            + ", ".join(f"lr={configs[i].optim.lr} E={configs[i].optim.epochs}" for i in live),
            flush=True,
        )
        return _OpenGroup(group_id, plan, {j: jobs[i] for j, i in enumerate(live)}, live)

    def _run_groups(
        self,
        groups: list[list[int]],
        cfgs: list[DictConfig],
        configs: list[Config],
        returns: dict[int, JobReturn],
    ) -> None:
        """Open each group's runs and start training it at once, one thread per group (with one
        BLAS thread each: the sweeper's limit), so the groups train side by side on every core
        while the next ones are still being opened. Each thread logs its own runs' epochs and
        closes each run as soon as its epochs are done. Ctrl-C (which only reaches this thread)
        stops every group at its next epoch; their open runs end KILLED."""
        from softmax_lab.fused_job import run_fused

        if not groups:
            return
        stop = threading.Event()
        opened: list[OpenJob] = []  # every run opened so far, to close if interrupted
        pool = ThreadPoolExecutor(len(groups), thread_name_prefix="fused-group")
        futures: dict[Future[dict[int, JobOutcome]], _OpenGroup] = {}
        try:
            with phase("training"):  # wall time, minus the opening and closing nested in it
                for group in groups:
                    g = self._open_group(group, cfgs, configs, returns, opened)
                    if g is not None:
                        futures[pool.submit(run_fused, g.plan, g.jobs, stop=stop)] = g
                for future in as_completed(futures):
                    g = futures[future]
                    outcomes = future.result()  # a group's failure is in its jobs' outcomes
                    for j, i in enumerate(g.live):
                        returns[i].return_value = outcomes[j]
                        report_outcome(outcomes[j])
        except BaseException:
            stop.set()  # the other groups stop at their next epoch and close their runs
            pool.shutdown(wait=True, cancel_futures=True)
            for job in opened:  # opened, or trained but not closed yet: never left RUNNING
                job.kill()
            raise
        pool.shutdown()


@dataclass
class _OpenGroup:
    """A fused group whose runs are open: what its thread trains."""

    group_id: str
    plan: FusedPlan
    jobs: dict[int, OpenJob]  # plan job index → open job
    live: list[int]  # sweep job index of each plan job
