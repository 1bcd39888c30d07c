"""``hydra/launcher=ray``: a sweep's fused groups and lone jobs trained as Ray tasks.

The jobs are planned exactly as the fused launcher plans them (``fusion.groups``: the same
groups, the same plans, so the same numbers), and their runs are opened, recorded and closed
by this process as the fused launcher does it (``runs.fused_job.run_fused``); only where a
group trains changes: each fused group, and each job that runs alone, is one Ray task
(``fusion.remote.train_unit``, a streaming generator). Its epochs stream back as the task
yields them, through Ray's object store, and a thread per task here records them, so a SQLite
store keeps its one writer and an ``http(s)://`` store works the same.

Why a streaming generator and not an actor or a queue: it is one task per unit, scheduled,
retried as a whole when its worker dies (``max_retries``) and cancelled by Ray, and its values
come back in order through Ray's object store; an actor would need our own retry and a queue
our own delivery. A retried task yields its epochs again from the first: those already
recorded are skipped here (by epoch number, and a job's end once), so no run gets a metric
point twice.

Options (``hydra.launcher.*``): ``address`` (unset: a new local Ray instance with this
machine's cores; ``auto`` or ``HOST:PORT``: join a running cluster), ``num_cpus`` per task,
``max_retries`` (retries of a task whose worker process died), ``runtime_env`` (what the
workers need, e.g. ``{pip: [/shared/softmax_lab-0.1.0-py3-none-any.whl]}``; by default the
nodes must have this softmax-lab installed: a node with another version fails its units).

Ray is imported only when this launcher runs a sweep.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hydra.core.utils import JobReturn, setup_globals
from omegaconf import DictConfig, OmegaConf

from softmax_lab.cli.console import report_input_error
from softmax_lab.cli.convert import to_config
from softmax_lab.cli.hydra_app import report_outcome
from softmax_lab.cli.launcher import FusedLauncher, OpenGroup
from softmax_lab.config.schema import Config
from softmax_lab.core.training import EpochMetrics, TrainResult
from softmax_lab.errors import InputError
from softmax_lab.fusion.groups import fusion_groups
from softmax_lab.fusion.remote import (
    FingerprintMismatchError,
    Placement,
    TrainingUnit,
    UnitFailed,
    package_version,
    train_unit,
)
from softmax_lab.fusion.worker import WorkerError, WorkerStoppedError
from softmax_lab.runs.timings import mark, phase

if TYPE_CHECKING:
    from softmax_lab.runs.job import JobOutcome, OpenJob

__all__ = [
    "RayConnectError",
    "RayLauncher",
    "RayLauncherConf",
    "RayStream",
    "check_reachable",
    "connect",
]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # how often a waiting recorder looks at its stop flag


@dataclass
class RayLauncherConf:
    _target_: str = "hydra_plugins.softmax_lab.RayLauncher"
    # unset: start a local Ray instance with this machine's cores; `auto` or HOST:PORT: join
    address: str | None = None
    num_cpus: float = 1.0  # CPUs Ray reserves for each task (a unit trains on one BLAS thread)
    max_retries: int = 1  # times Ray reruns a task whose worker process died
    # Ray's runtime environment for the workers (pip, env_vars, …); empty: the nodes have
    # this softmax-lab installed
    runtime_env: dict[str, Any] = field(default_factory=dict)


class RayConnectError(InputError):
    """The sweep could not start or join its Ray cluster (``hydra.launcher.address``)."""


class RayStream:
    """The events of one unit's Ray task, as ``runs.fused_job.run_fused`` records them.

    Parameters
    ----------
    generator : ray.ObjectRefGenerator
        The task's streaming generator.
    name : str
        The unit, in error messages.
    on_placement : callable
        Called with the task's ``Placement`` when it arrives (tags the runs).
    """

    finished_at: float | None = None  # another machine's clock: not comparable with ours

    def __init__(self, generator: Any, name: str, on_placement: Any) -> None:
        self.generator = generator
        self.name = name
        self.on_placement = on_placement
        self.placement: Placement | None = None
        self.done = False

    def events(
        self, stop: threading.Event | None = None
    ) -> Iterator[tuple[int, EpochMetrics | TrainResult]]:
        import ray

        epochs: dict[int, int] = {}  # plan job → last epoch yielded
        ended: set[int] = set()
        while True:
            if stop is not None and stop.is_set():
                self.stop()
                raise KeyboardInterrupt("stopped: the sweep was interrupted")
            ready, _ = ray.wait([self.generator], timeout=POLL_SECONDS)
            if not ready:
                continue
            try:
                ref = next(self.generator)
            except StopIteration:
                self.done = True
                return
            try:
                event = ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                self.done = True
                raise WorkerStoppedError(f"{self.name}: its Ray task was cancelled") from None
            except ray.exceptions.RayError as e:  # the worker died (retries used up), or crashed
                self.done = True
                raise WorkerError(f"{self.name}: {_describe(e)}") from None
            if isinstance(event, Placement):
                self.placement = event
                self.on_placement(event)
            elif isinstance(event, UnitFailed):
                self.done = True
                error = FingerprintMismatchError if event.mismatch else WorkerError
                raise error(f"{self.name}: {event.reason}")
            else:
                j, payload = event
                if isinstance(payload, EpochMetrics):
                    if payload.epoch <= epochs.get(j, 0):  # replayed by a retried task
                        continue
                    epochs[j] = payload.epoch
                elif j in ended:
                    continue
                else:
                    ended.add(j)
                yield j, payload

    def stop(self) -> None:
        """Cancel the task (its worker process is killed) unless it has ended."""
        if self.done:
            return
        self.done = True
        import ray

        try:
            ray.cancel(self.generator, force=True)
        except Exception as e:  # e.g. it ended meanwhile
            log.debug("cancelling %s: %s", self.name, e)


def _describe(e: BaseException) -> str:
    """A Ray error in one line, with its cause's first line."""
    text = str(e).strip().splitlines()
    first = text[0] if text else ""
    if type(e).__name__ == "WorkerCrashedError" or "died" in first.lower():
        return f"its Ray worker process died before the task was done ({type(e).__name__})"
    return f"{type(e).__name__}: {first[:300]}"


def check_reachable(address: str | None) -> None:
    """Raise ``RayConnectError`` when nothing listens at a ``HOST:PORT`` address (Ray's client
    would retry it for minutes); ``auto`` and unset are Ray's to find or start."""
    if address in (None, "auto", "local"):
        return
    host, _, port = str(address).rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError) as e:
        raise RayConnectError(
            f"hydra/launcher=ray: no Ray cluster answers at {address} ({e}); give the head "
            "node's HOST:PORT (its `ray start --head --port`), or `auto` on a node of the "
            "cluster"
        ) from None


def connect(address: str | None, runtime_env: dict[str, Any] | None) -> None:
    """Start a local Ray instance (``address`` unset) or join a cluster (``auto``,
    ``HOST:PORT``). With token authentication the token comes from ``RAY_AUTH_TOKEN``,
    ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``, as for Ray's own commands."""
    import ray

    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,  # the tasks report through their results, not their output
        "logging_level": logging.WARNING,
    }
    if runtime_env:
        kwargs["runtime_env"] = dict(runtime_env)
    check_reachable(address)
    # Ray's core installs its own handlers (SIGTERM: print a stack and die): ours stay, so
    # SIGTERM unwinds like Ctrl-C, cancels the tasks and closes the runs as KILLED
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if address is None:  # "local": a new instance even if a cluster runs on this machine
            ray.init(address="local", num_cpus=os.cpu_count() or 1, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except Exception as e:  # no cluster there, a wrong token, …: one line, exit code 2
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        first = (str(e).strip().splitlines() or [""])[0]
        raise RayConnectError(
            f"hydra/launcher=ray could not start or join {where}: {type(e).__name__}: {first}"
        ) from e
    finally:
        for number, handler in handlers.items():
            if handler is not None:
                signal.signal(number, handler)


class RayLauncher(FusedLauncher):
    """Runs a sweep's fused groups and lone jobs as Ray tasks and records them here."""

    def __init__(
        self,
        address: str | None = None,
        num_cpus: float = 1.0,
        max_retries: int = 1,
        runtime_env: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(prestart=False)
        self.address = address
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        # Hydra hands over a DictConfig: Ray wants plain dicts and lists
        env = OmegaConf.to_container(runtime_env) if isinstance(runtime_env, DictConfig) else None
        self.runtime_env = env if isinstance(env, dict) else runtime_env or None

    def prestart(self, configs: Sequence[Config]) -> None:
        """Nothing trains before the parent run exists (Ray starts with the launch), but a
        cluster address where nothing listens stops the sweep here, before anything is made:
        one line, exit code 2."""
        try:
            check_reachable(self.address)
        except RayConnectError as e:
            raise SystemExit(report_input_error(e, suffix="; nothing was run")) from e

    def launch_numbered(
        self, job_overrides: Sequence[Sequence[str]], job_nums: Sequence[int]
    ) -> Sequence[JobReturn]:
        import ray

        setup_globals()
        cfgs = [self.job_config(o, n) for o, n in zip(job_overrides, job_nums, strict=True)]
        configs = [to_config(c) for c in cfgs]
        groups = fusion_groups(configs)
        returns: dict[int, JobReturn] = {}
        with phase("ray"):
            try:
                connect(self.address, self.runtime_env)
            except RayConnectError as e:  # the parent run ends KILLED, without jobs
                raise SystemExit(report_input_error(e, suffix="; no job was run")) from e
        try:
            self._run_units(groups, cfgs, configs, returns)
        finally:
            with phase("ray"):
                ray.shutdown()
        return [returns[i] for i in range(len(cfgs))]

    def _submit(self, group: list[int], configs: list[Config], fingerprint: str) -> Any:
        """Start the unit's Ray task; its ObjectRefGenerator."""
        import ray

        from softmax_lab.fusion.groups import group_plan

        unit = TrainingUnit(
            tuple(configs[i] for i in group),
            group_plan(group, configs) if len(group) > 1 else None,
            fingerprint,
            package_version(),
        )
        task = ray.remote(train_unit).options(
            num_cpus=self.num_cpus, max_retries=self.max_retries, num_returns="streaming"
        )
        return task.remote(unit)

    def _run_units(
        self,
        groups: list[list[int]],
        cfgs: list[DictConfig],
        configs: list[Config],
        returns: dict[int, JobReturn],
    ) -> None:
        """Submit every unit's task first, then open each unit's runs and record it in a
        thread of its own. Ctrl-C and SIGTERM (which reach this thread) cancel every task;
        the open runs end KILLED."""
        from softmax_lab.runs.fused_job import run_fused

        streams: list[RayStream] = []
        stop = threading.Event()
        opened: list[OpenJob] = []
        pool = ThreadPoolExecutor(max(1, len(groups)), thread_name_prefix="ray-unit")
        futures: dict[Future[dict[int, JobOutcome]], OpenGroup] = {}
        try:
            with phase("training"):
                submitted: list[Any] = []
                for group in groups:
                    try:  # the sweep's data, as its runs' config hashes will say
                        fingerprint = configs[group[0]].dataset.load().fingerprint
                    except Exception:  # its jobs report why when they are opened
                        submitted.append(None)
                        continue
                    submitted.append(self._submit(group, configs, fingerprint))
                mark("training_start")
                for group, generator in zip(groups, submitted, strict=True):
                    fused = len(group) > 1
                    g = self.open_group(group, cfgs, configs, returns, opened, fused=fused)
                    if generator is None:
                        continue
                    name = (
                        f"Ray task of jobs {group[0]}..{group[-1]}"
                        if fused
                        else f"Ray task of job {cfgs[group[0]].hydra.job.num}"
                    )
                    stream = RayStream(generator, name, _tagger(g, name))
                    streams.append(stream)
                    if g is None:
                        stream.stop()
                        continue
                    futures[pool.submit(run_fused, g.plan, g.jobs, stop=stop, worker=stream)] = g
                for future in as_completed(futures):
                    g = futures[future]
                    outcomes = future.result()
                    for j in g.jobs:
                        returns[g.group[j]].return_value = outcomes[j]
                        report_outcome(outcomes[j])
                mark("training_done", latest=True)
        except BaseException as e:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            for stream in streams:
                stream.stop()
            for job in opened:  # never left RUNNING
                if isinstance(e, Exception):
                    job.fail(f"{type(e).__name__}: {e}")
                else:
                    job.kill()
            raise
        pool.shutdown()


def _tagger(g: OpenGroup | None, name: str) -> Any:
    """What to do when a unit's task says where it runs: tag its runs, say it once."""

    def tag(p: Placement) -> None:
        print(f"[ray] {name}: {p.describe()}, task {p.task_id}", flush=True)
        if g is None:
            return
        for job in g.jobs.values():
            job.rec.set_tags(
                {
                    "sl.ray_node": p.node_id,
                    "sl.ray_node_ip": p.node_ip,
                    "sl.ray_host": p.host,
                    "sl.ray_task_id": p.task_id,
                },
                defer=True,
            )

    return tag
