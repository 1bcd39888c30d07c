"""``hydra/launcher=fused`` (the default for sweeps): fuse the jobs that can share their work.

Jobs of softmax regression that agree on everything but step size and epochs (dataset,
batch size, shuffling, seed, tracking) form a group. A group is trained once by
``fusion.stacked.train_group``, yet every job still gets Hydra's own output directory and
its own MLflow run, with the same params, metrics and artifacts a separate run would have,
plus the tags ``sl.fused`` and ``sl.fused_group``. Any other job runs alone, exactly as under
``hydra/launcher=basic``.

Each group trains in a child process of its own (``softmax_lab.fusion.worker``) while this
process records it. The sweeper starts those children as soon as its jobs are validated
(``prestart``), so the groups train while MLflow is still being imported and the store opened;
nothing is recorded before the sweep's parent run exists.

A group any of whose jobs has a judge (``state.judges``, by Hydra job number: a sweeper that
stops jobs early) trains in a lockstep child, which waits after each epoch for which of its
jobs to stop; a worker prestarted without lockstep for it is replaced.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hydra.core.utils import JobReturn, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from softmax_lab.cli import state
from softmax_lab.cli.convert import to_config
from softmax_lab.cli.hydra_app import report_outcome
from softmax_lab.cli.hydra_job import run_job_light
from softmax_lab.config.schema import Config
from softmax_lab.fusion.groups import fusion_groups, group_plan, start_worker
from softmax_lab.runs.timings import mark, phase

if TYPE_CHECKING:
    from softmax_lab.core.training import StackPlan
    from softmax_lab.fusion.worker import FusedWorker
    from softmax_lab.runs.job import JobOutcome, OpenJob

__all__ = ["FusedLauncher", "FusedLauncherConf", "OpenGroup", "start_group"]

log = logging.getLogger(__name__)


def start_group(
    group: Sequence[int], configs: Sequence[Config], *, lockstep: bool = False
) -> FusedWorker | None:
    """Load a group's data (timed as ``data``) and start training it in a child process
    (marked ``training_start``); None when it cannot start (its jobs then report why, e.g.
    missing data, when they are opened, and train in this process). ``lockstep``: the child
    waits after each epoch for which jobs to stop (jobs with a judge)."""
    try:
        with phase("data"):
            data = configs[group[0]].dataset.load()  # memoised: the runs reuse it
        worker = start_worker(group, configs, data, lockstep=lockstep)
    except Exception as e:
        log.debug("group of jobs %s not started in a child process: %s", list(group), e)
        return None
    mark("training_start")
    return worker


@dataclass
class FusedLauncherConf:
    _target_: str = "hydra_plugins.softmax_lab.FusedLauncher"
    # start training the fused groups as soon as the jobs are validated, while the store is
    # opened (false: only once the sweep's parent run exists, as a resumed sweep does)
    prestart: bool = True


class FusedLauncher(Launcher):
    """Runs a sweep's jobs, fusing compatible ones: each fused group trains in a child
    process and is recorded here; every other job runs in this process, as Hydra's basic
    launcher would run it."""

    def __init__(self, prestart: bool = True) -> None:
        self.prestart_enabled = prestart
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self._prestarted: dict[tuple[int, ...], FusedWorker] = {}

    def prestart(self, configs: Sequence[Config]) -> None:
        """Start training the fused groups of these validated jobs (all of the sweep's, in
        order) before their runs exist; ``launch`` records them. Call ``discard_prestarted``
        if the sweep stops before launching. Does nothing with ``prestart=false``."""
        if not self.prestart_enabled:
            return
        for group in fusion_groups(configs):
            if len(group) > 1:
                worker = start_group(group, configs)
                if worker is not None:
                    self._prestarted[tuple(group)] = worker

    def discard_prestarted(self) -> None:
        """Stop the children that ``prestart`` started and ``launch`` did not take."""
        while self._prestarted:
            self._prestarted.popitem()[1].stop()

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def job_config(self, overrides: Sequence[str], idx: int) -> DictConfig:
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
        job_nums = range(initial_job_idx, initial_job_idx + len(job_overrides))
        return self.launch_numbered(job_overrides, job_nums)

    def launch_numbered(
        self, job_overrides: Sequence[Sequence[str]], job_nums: Sequence[int]
    ) -> Sequence[JobReturn]:
        """``launch`` with each job's own number (``hydra.job.num``, its output directory
        ``<sweep dir>/<num>``, the tag ``sl.hydra_job_num``): a resumed sweep runs jobs 3, 7
        and 8 of its grid as themselves, fused together as a fresh sweep would fuse them."""
        setup_globals()
        assert self.task_function is not None
        cfgs = [self.job_config(o, n) for o, n in zip(job_overrides, job_nums, strict=True)]
        configs = [to_config(c) for c in cfgs]
        groups = fusion_groups(configs)
        returns: dict[int, JobReturn] = {}
        try:
            self._run_groups([g for g in groups if len(g) > 1], cfgs, configs, returns)
        finally:
            self.discard_prestarted()
        for group in groups:
            if len(group) == 1:
                returns[group[0]] = self._run(cfgs[group[0]], self.task_function)
        return [returns[i] for i in range(len(cfgs))]

    def open_group(
        self,
        group: list[int],
        cfgs: list[DictConfig],
        configs: list[Config],
        returns: dict[int, JobReturn],
        opened: list[OpenJob],
        *,
        fused: bool = True,
    ) -> OpenGroup | None:
        """Open each job's run under its own Hydra output dir, as a separate run would. The
        group's plan covers all its jobs (those that could not start are trained, not
        recorded). None when no job of the group could start. With ``fused=false`` (a job
        that runs alone, opened so that it trains elsewhere) its runs are not tagged or
        announced as fused."""
        from softmax_lab.cli.hydra_app import job_context
        from softmax_lab.errors import StoreFullError
        from softmax_lab.runs.job import JobOutcome, close_job, open_job

        def open_task(cfg: DictConfig) -> OpenJob | JobOutcome:
            config = to_config(cfg)
            try:
                job = open_job(config, job_context(config))
            except StoreFullError as e:  # its run could not even be created: no traceback
                return JobOutcome("FAILED", None, f"{type(e).__name__}: {e}")
            opened.append(job)
            return job

        assert self.hydra_context is not None
        with phase("setup"):  # Hydra's job dirs and the runs' opening, apart from store writes
            rets = {i: run_job_light(self.hydra_context, open_task, cfgs[i]) for i in group}
        returns.update(rets)
        jobs: dict[int, OpenJob] = {}
        for j, i in enumerate(group):
            try:
                job = rets[i].return_value
            except Exception as e:  # opening failed outright: leave the JobReturn as FAILED
                log.error("job %d could not start: %s", i, e)
                continue
            if isinstance(job, JobOutcome):
                continue
            if job.outcome is None and job.data is not None:
                jobs[j] = job
            else:
                rets[i].return_value = close_job(job)
        if not jobs:
            return None
        plan = group_plan(group, configs)
        group_id = uuid.uuid4().hex[:8]
        if not fused:
            return OpenGroup(group_id, plan, jobs, list(group))
        for j, job in jobs.items():
            job.rec.set_tags(
                {"sl.fused": "true", "sl.fused_group": f"{group_id} {plan.describe(j)}"},
                defer=True,
            )
        live = [group[j] for j in jobs]
        print(
            f"[fused group {group_id}] {len(live)} jobs, {len(plan.lrs)} step sizes side by side, "
            f"{max(plan.epochs)} epochs, batch size {configs[live[0]].optim.batch_size}: "
            + ", ".join(f"lr={configs[i].optim.lr} E={configs[i].optim.epochs}" for i in live),
            flush=True,
        )
        return OpenGroup(group_id, plan, jobs, list(group))

    def _worker(
        self, group: list[int], cfgs: list[DictConfig], configs: list[Config]
    ) -> FusedWorker | None:
        """The child process training this group: the one ``prestart`` started, or a new one;
        in lockstep when a job of the group has a judge (``state.judges``), so that it can be
        stopped early."""
        lockstep = any(cfgs[i].hydra.job.num in state.judges for i in group)
        worker = self._prestarted.pop(tuple(group), None)
        if (
            worker is not None
            and worker.plan == group_plan(group, configs)
            and worker.lockstep == lockstep
        ):
            return worker
        if worker is not None:  # not what it was started for: another plan, or no lockstep
            worker.stop()
        return start_group(group, configs, lockstep=lockstep)

    def _run_groups(
        self,
        groups: list[list[int]],
        cfgs: list[DictConfig],
        configs: list[Config],
        returns: dict[int, JobReturn],
    ) -> None:
        """Have every group training in its own child process first (unless ``prestart``
        did), then open each group's runs and record it in a thread of its own, which logs
        its runs' epochs as they come and closes each run as soon as its epochs are done.
        Ctrl-C (which only reaches this thread) stops every group at once; their open runs end
        KILLED."""
        from softmax_lab.runs.fused_job import run_fused

        if not groups:
            return
        # forked on this thread (the main one: see FusedWorker)
        workers = {tuple(g): self._worker(g, cfgs, configs) for g in groups}
        stop = threading.Event()
        opened: list[OpenJob] = []  # every run opened so far, to close if interrupted
        pool = ThreadPoolExecutor(len(groups), thread_name_prefix="fused-group")
        futures: dict[Future[dict[int, JobOutcome]], OpenGroup] = {}
        try:
            with phase("training"):  # wall time, minus the opening and closing nested in it
                for group in groups:
                    g = self.open_group(group, cfgs, configs, returns, opened)
                    worker = workers.pop(tuple(group))
                    if g is None:
                        if worker is not None:
                            worker.stop()
                        continue
                    futures[pool.submit(run_fused, g.plan, g.jobs, stop=stop, worker=worker)] = g
                for future in as_completed(futures):
                    g = futures[future]
                    outcomes = future.result()  # a group's failure is in its jobs' outcomes
                    for j in g.jobs:
                        returns[g.group[j]].return_value = outcomes[j]
                        report_outcome(outcomes[j])
        except BaseException as e:
            stop.set()  # the other groups stop at once and close their runs
            pool.shutdown(wait=True, cancel_futures=True)
            for worker in workers.values():  # groups not opened yet
                if worker is not None:
                    worker.stop()
            for job in opened:  # opened, or trained but not closed yet: never left RUNNING
                if isinstance(e, Exception):  # not an interruption: FAILED, with the cause
                    job.fail(f"{type(e).__name__}: {e}")
                else:
                    job.kill()
            raise
        pool.shutdown()


@dataclass
class OpenGroup:
    """A fused group whose runs are open: what its thread trains."""

    group_id: str
    plan: StackPlan
    jobs: dict[int, OpenJob]  # plan job index → open job, for the jobs that started
    group: list[int]  # sweep job index of each plan job
