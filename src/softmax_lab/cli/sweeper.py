"""The default sweeper: Hydra's basic grid expansion, plus what a tracked sweep needs first.

Before the first job starts it composes every job's config once and validates all of them
(reporting every bad job at once), creates the MLflow store and experiment, and opens the
sweep's parent run. A launcher with a ``prestart`` (the fused one) is handed the validated jobs
first, so it can start training them while the store is opened; nothing is recorded before.
Each job gets the parent's id and the sweep id as overrides, so the link survives any launcher,
in-process or not. At the end it closes the parent run (FAILED if any job failed) and prints
the sweep's comparison table and the command that opens the UI (``summary``).

Every sweep holds its lock in the store (``tracking.sweep_lock``) from before it looks for
the sweep's runs until it ends, Ctrl-C and SIGTERM included; a second process running the same
sweep command (first run or ``resume=true``) stops at once with one line naming the holder,
exit code 2. So a resume that gets the lock knows the sweep's runs still RUNNING were left by
a process that died (SIGKILL): it closes them as KILLED with a reason naming the resume, and
only then decides which jobs to run. A resumed job keeps its number in the whole grid
(``hydra.job.num``, the tag ``sl.hydra_job_num``) and so its output directory
``<sweep dir>/<num>``: the directories of the skipped jobs are left as they are.
"""

from __future__ import annotations

import hashlib
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from softmax_lab.cli import state
from softmax_lab.cli.compose import compose_jobs
from softmax_lab.cli.console import INPUT_ERROR_EXIT, SweepProgress, report_input_error
from softmax_lab.cli.convert import to_config
from softmax_lab.cli.summary import summarise_sweep
from softmax_lab.config.schema import Config, config_hash, validate
from softmax_lab.data.files import write_atomically
from softmax_lab.errors import ConfigError, InputError
from softmax_lab.runs.timings import mark, phase

if TYPE_CHECKING:
    from softmax_lab.tracking.sweep_lock import SweepLock

__all__ = [
    "SoftmaxLabSweeper",
    "SoftmaxLabSweeperConf",
    "bookkeeping_overrides",
    "consecutive_stretches",
    "finish_parent",
    "sweep_signature",
]


def sweep_signature(arguments: Sequence[str]) -> str:
    """What identifies "the same sweep command": its overrides, in any order, minus ``resume``."""
    kept = sorted(a for a in arguments if not a.lstrip("+~").startswith("resume="))
    return hashlib.sha256("\n".join(kept).encode()).hexdigest()[:16]


def _already_finished(cfg: Config) -> bool:
    """Whether a FINISHED run with this job's config hash exists (so ``resume`` skips it)."""
    from softmax_lab.tracking import reading, store

    fingerprint = cfg.dataset.load().fingerprint  # loaded once, reused by the jobs
    runs = reading.find_runs_by_config_hash(
        store.resolve_uri(cfg.tracking.uri),
        cfg.tracking.experiment,
        config_hash(cfg, fingerprint),
    )
    return any(status == "FINISHED" for _, status in runs)


def consecutive_stretches(nums: Sequence[int]) -> list[tuple[int, int]]:
    """``(start, stop)`` slices of ``nums`` whose numbers follow one another:
    ``[0, 1, 4, 5, 6, 9]`` → ``[(0, 2), (2, 5), (5, 6)]``."""
    stretches: list[tuple[int, int]] = []
    start = 0
    for k in range(1, len(nums) + 1):
        if k == len(nums) or nums[k] != nums[k - 1] + 1:
            stretches.append((start, k))
            start = k
    return stretches


def bookkeeping_overrides(parent_run_id: str, sweep_id: str) -> list[str]:
    """The overrides that tie a job to its sweep, quoted: Hydra reads an unquoted ``1234e567``
    as a float and ``12345678`` as an int, and the job's run would then name another sweep."""
    return [f"tracking.parent_run_id='{parent_run_id}'", f"tracking.sweep_id='{sweep_id}'"]


def finish_parent(
    uri: str, experiment: str, sweep_id: str, parent: str, status: str, reason: str | None
) -> bool:
    """End a sweep's parent run; whether the store took it. Any run of the sweep the store
    could not close (e.g. it is full) is named in one line on stderr, the parent's included."""
    from softmax_lab.tracking import reading, run_writes

    problem = None
    try:
        run_writes.finish_run(uri, parent, status, reason)
    except Exception as e:  # the store is full, or gone: say which runs stay RUNNING
        problem = f"{type(e).__name__}: {e}"
    try:
        runs = reading.runs_frame(uri, experiment, sweep_id=sweep_id)
        running = [str(r) for r in runs.loc[runs["status"] == "RUNNING", "run_id"]]
    except Exception as e:  # reading failed too: the line says what is known
        running = [f"(unknown: {type(e).__name__}: {e})"]
    if problem is None and not running:
        return True
    left = ([f"parent {parent}"] if problem is not None else []) + running
    print(
        f"softmax-lab: the store at {uri} could not close every run of sweep {sweep_id}"
        + (f" ({problem})" if problem else "")
        + f"; left RUNNING: {', '.join(left)}",
        file=sys.stderr,
    )
    return False


@dataclass
class SoftmaxLabSweeperConf:
    """``hydra/sweeper=softmax_lab`` (the default in conf/config.yaml)."""

    _target_: str = "hydra_plugins.softmax_lab.SoftmaxLabSweeper"
    max_batch_size: int | None = None
    params: dict[str, str] | None = None


@dataclass(frozen=True)
class _Tracked:
    """Where a sweep is recorded and which of its jobs still run."""

    uri: str
    experiment: str
    parent: str
    sweep_id: str
    todo: list[int]
    resumed: bool
    experiment_ids: dict[tuple[str, str], str]  # (resolved uri, experiment) → id, prepared
    lock: SweepLock  # held until the sweep ends
    closed: list[str]  # runs a dead earlier process left RUNNING, closed KILLED by this resume


class SoftmaxLabSweeper(BasicSweeper):
    """Grid sweeps whose jobs are all validated, and tracked under one parent run."""

    def __init__(self, max_batch_size: int | None, params: dict[str, str] | None = None):
        super().__init__(max_batch_size=max_batch_size, params=params)

    def _expand(self, arguments: list[str]) -> list[list[str]]:
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(self._parse_config() + list(arguments))
        return [list(job) for batch in self.split_arguments(overrides, None) for job in batch]

    def compose_configs(
        self, jobs: Sequence[Sequence[str]], nums: Sequence[int] | None = None
    ) -> tuple[list[DictConfig], list[Config | None], list[str]]:
        """Compose each job once and check it: the composed configs (for the launcher), each
        job's validated ``Config`` (None for a bad one) and one line per bad job, naming it by
        its number (``nums``, else its index).

        Jobs that differ only in plain values share one Hydra composition (``compose_jobs``).
        """
        assert self.hydra_context is not None and self.config is not None
        configs: list[Config | None] = []
        problems = []
        composed = compose_jobs(self.hydra_context.config_loader, self.config, jobs)
        for i, (job, cfg) in enumerate(zip(jobs, composed, strict=True)):
            label = f"job {i if nums is None else nums[i]} ({' '.join(job)})"
            try:
                configs.append(validate(to_config(cfg)))
                continue
            except ConfigError as e:
                problems.append(f"{label}: {'; '.join(e.problems)}")
            except InputError as e:
                detail = str(e).replace("\n  ", "; ")
                problems.append(f"{label}: {detail}")
            configs.append(None)
        return composed, configs, problems

    def _compose_and_validate(self, jobs: list[list[str]]) -> list[Config]:
        """Compose each job once (kept in ``self._composed`` for the launcher), check all;
        exit code 2 with every bad job named, before anything runs."""
        self._composed, checked, problems = self.compose_configs(jobs)
        if problems:
            print(
                f"softmax-lab: {len(problems)} of {len(jobs)} jobs have invalid configs; "
                "nothing was run:\n  " + "\n  ".join(problems),
                file=sys.stderr,
            )
            raise SystemExit(INPUT_ERROR_EXIT)
        return [c for c in checked if c is not None]

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        with phase("compose"):
            jobs = self._expand(arguments)
            configs = self._compose_and_validate(jobs)
        resume = any(c.resume for c in configs)

        prestart = getattr(self.launcher, "prestart", None)
        if prestart is not None and not resume:  # which jobs run is known: train meanwhile
            prestart(configs)
        try:
            with phase("store"):
                try:
                    tracked = self._open_parent(arguments, jobs, configs, resume)
                except InputError as e:  # e.g. no server at tracking.uri
                    raise SystemExit(report_input_error(e, suffix="; nothing was run")) from e
        except BaseException:
            getattr(self.launcher, "discard_prestarted", lambda: None)()
            raise
        try:
            ran = self._run_sweep(jobs, tracked, resume)
        finally:
            tracked.lock.release()  # also on Ctrl-C or SIGTERM: the next resume may run
        if ran is None:  # stopped before any job (its directory cannot be written)
            return []
        results, failed, closed = ran
        with phase("summary"):
            summarise_sweep(
                tracked.uri,
                tracked.experiment,
                tracked.sweep_id,
                len(jobs),
                failed,
                tracked.parent,
                Path(self.config.hydra.sweep.dir) / "report",
                log_best_model=any(c.tracking.log_model == "single" for c in configs),
            )
        state.last_exit_code[0] = 1 if failed or not closed else 0
        return [results]

    def _run_sweep(
        self, jobs: list[list[str]], tracked: _Tracked, resume: bool
    ) -> tuple[Sequence[Any], list[str], bool] | None:
        """Run the jobs left to run under the parent run, then close it (KILLED if
        interrupted, FAILED with the cause on another error); return the launcher's results,
        one line per failed job and whether the store closed every run of the sweep. None if
        the sweep directory cannot be written (nothing run; see ``_stop_unwritable``)."""
        assert self.config is not None

        sweep_dir = Path(self.config.hydra.sweep.dir)  # only now: nothing made for a bad store
        try:
            sweep_dir.mkdir(parents=True, exist_ok=True)
            write_atomically(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(self.config).encode())
        except OSError as err:  # e.g. no space left on device: no job could write its files
            getattr(self.launcher, "discard_prestarted", lambda: None)()
            self._stop_unwritable(tracked, f"cannot write the sweep directory: {err}")
            return None
        uri, parent, sweep_id, todo = tracked.uri, tracked.parent, tracked.sweep_id, tracked.todo
        extra = bookkeeping_overrides(parent, sweep_id)
        sweep = state.SweepState(
            sweep_id, len(todo), SweepProgress(len(todo)), tracked.experiment_ids
        )
        state.current[:] = [sweep]
        print(f"sweep {sweep_id}: {len(jobs)} jobs, tracked in {uri} (parent run {parent})")
        took_over = tracked.lock.took_over
        if took_over is not None:
            print(f"sweep lock: taken over from a dead process ({took_over.describe()})")
        if resume:
            print(
                f"resume: {len(jobs) - len(todo)} of {len(jobs)} jobs skipped (already FINISHED "
                f"with the same config hash), {len(todo)} to run"
                + (f", under the earlier sweep {sweep_id}" if tracked.resumed else "")
            )
        if tracked.closed:
            n = len(tracked.closed)
            print(f"resume: closed as KILLED {n} run{'s' * (n != 1)} the dead sweep left RUNNING")
        status, reason = "KILLED", None
        results: Sequence[Any] = []
        try:
            if todo:
                results = self._launch(todo, [jobs[i] + extra for i in todo], tracked, sweep)
            failed = self.job_failures(results, todo, jobs)
            status = "FAILED" if failed else "FINISHED"
        except Exception as e:  # not an interruption: the parent run FAILED, with the cause
            status, reason = "FAILED", f"{type(e).__name__}: {e}"
            raise
        finally:
            if sweep.progress is not None:
                sweep.progress.close()
            state.current.clear()
            closed = finish_parent(
                tracked.uri, tracked.experiment, tracked.sweep_id, tracked.parent, status, reason
            )
        return results, failed, closed

    def _stop_unwritable(self, tracked: _Tracked, reason: str) -> None:
        """Stop a sweep whose directory cannot be written, before any job: its parent run
        FAILED with ``reason``, one line on stderr, exit code 1."""
        from softmax_lab.tracking import run_writes

        try:
            run_writes.finish_run(tracked.uri, tracked.parent, "FAILED", reason)
            ended = f"parent run {tracked.parent} FAILED"
        except Exception as e:  # e.g. the store is full as well
            ended = f"parent run {tracked.parent} left RUNNING: {type(e).__name__}: {e}"
        print(
            f"softmax-lab: sweep {tracked.sweep_id}: {reason}; no job was run ({ended})",
            file=sys.stderr,
        )
        state.last_exit_code[0] = 1

    def _open_parent(
        self, arguments: list[str], jobs: list[list[str]], configs: list[Config], resume: bool
    ) -> _Tracked:
        """Create the store(s) and experiment(s), take the sweep's lock, then create the
        sweep's parent run (or, resuming, close the runs the earlier sweep's dead process left
        RUNNING and reopen its parent), and decide which jobs still need to run.

        Raises ``SweepLockedError`` (an ``InputError``) when another process holds the lock.
        """
        from softmax_lab.tracking import provenance, reading, run_writes, store, sweep_lock

        first = configs[0].tracking
        uri = store.resolve_uri(first.uri)
        experiment_id = store.prepare_store(uri, first.experiment)
        prepared = {(uri, first.experiment): experiment_id}
        for other in {(c.tracking.uri, c.tracking.experiment) for c in configs[1:]}:
            where = (store.resolve_uri(other[0]), other[1])
            prepared[where] = store.prepare_store(*where)
        signature = sweep_signature(arguments)
        lock = sweep_lock.acquire_sweep_lock(uri, experiment_id, signature)
        try:
            resumed = reading.find_sweep_run(uri, first.experiment, signature) if resume else None
            closed: list[str] = []
            if resumed is not None:
                parent, sweep_id = resumed
                # we hold the lock: whatever of this sweep is RUNNING lost its process
                dead = lock.took_over
                died = (
                    f"its sweep process ({dead.describe()}) died"
                    if dead is not None
                    else "its sweep process ended"
                )
                closed = run_writes.close_dead_children(
                    uri,
                    sorted(set(prepared.values())),
                    parent,
                    f"{died} and left it RUNNING; closed by resume=true of sweep {sweep_id} "
                    f"(pid {lock.holder.pid} on host {lock.holder.host})",
                )
                run_writes.reopen_run(uri, parent)
            else:
                sweep_id = uuid.uuid4().hex[:8]
                parent = run_writes.start_sweep_run(
                    uri,
                    experiment_id,
                    sweep_id=sweep_id,
                    run_name=f"sweep {sweep_id}: {' '.join(arguments)}"[:250],
                    tags={
                        "sl.overrides": " ".join(arguments),
                        "sl.sweep_signature": signature,
                        "sl.jobs": str(len(jobs)),
                        **provenance.environment_tags(),
                    },
                )
            todo = list(range(len(jobs)))
            if resume:
                todo = [i for i in todo if not _already_finished(configs[i])]
        except BaseException:
            lock.release()
            raise
        return _Tracked(
            uri,
            first.experiment,
            parent,
            sweep_id,
            todo,
            resumed is not None,
            prepared,
            lock,
            closed,
        )

    def _launch(
        self, todo: list[int], run_jobs: list[list[str]], tracked: _Tracked, sweep: Any
    ) -> Sequence[Any]:
        """Run the jobs through the launcher, with one BLAS thread.

        A job's n×10 GEMMs take OpenBLAS's single-threaded small-matrix path, so a second BLAS
        thread gains nothing there and, when the machine is busy, its spinning threads slow
        training down several times (measured: 1.4 s → 1.8–3.7 s for 10 epochs at B=200). The
        fused launcher uses the other cores instead by training its groups in threads.

        Each job keeps its number in the whole grid (``todo``): the fused launcher takes the
        numbers (``launch_numbered``), so a resume's jobs still fuse as one batch; any other
        launcher gets one ``launch`` per stretch of consecutive numbers.
        """
        self.hand_over(todo, run_jobs, tracked.parent, tracked.sweep_id)
        mark("first_job")
        results = self.launch_jobs(run_jobs, todo)
        mark("last_job_done")
        return results

    def launch_jobs(self, run_jobs: Sequence[Sequence[str]], nums: Sequence[int]) -> list[Any]:
        """Run jobs numbered ``nums`` through the launcher with one BLAS thread (see
        ``_launch``): the fused launcher takes the numbers, any other launcher gets one
        ``launch`` per stretch of consecutive numbers."""
        from threadpoolctl import threadpool_limits

        assert self.launcher is not None
        numbered = getattr(self.launcher, "launch_numbered", None)  # the fused launcher's
        with threadpool_limits(limits=1, user_api="blas"):
            if numbered is not None:
                return list(numbered(run_jobs, nums))
            # Hydra's launchers number jobs from initial_job_idx on: one call per stretch
            results: list[Any] = []
            for start, stop in consecutive_stretches(nums):
                results += self.launcher.launch(run_jobs[start:stop], initial_job_idx=nums[start])
            return results

    def hand_over(
        self,
        todo: Sequence[int],
        run_jobs: Sequence[Sequence[str]],
        parent: str,
        sweep: str,
        composed: Sequence[DictConfig] | None = None,
    ) -> None:
        """Give the launcher the configs composed for validation, so it need not compose again
        (our fused launcher takes them; others compose as usual)."""
        state.composed.clear()
        for k, (i, overrides) in enumerate(zip(todo, run_jobs, strict=True)):
            cfg = self._composed[i] if composed is None else composed[k]
            with read_write(cfg), open_dict(cfg):
                cfg.tracking.parent_run_id = parent
                cfg.tracking.sweep_id = sweep
                cfg.hydra.overrides.task = list(overrides)
            state.composed[tuple(overrides)] = cfg

    @staticmethod
    def job_failures(
        results: Sequence[Any], todo: Sequence[int], jobs: Sequence[Sequence[str]]
    ) -> list[str]:
        """One line per failed job (numbered in the whole grid), from the jobs' own outcomes
        (any launcher)."""
        failed = []
        for ret, i in zip(results, todo, strict=True):
            job = " ".join(jobs[i])
            try:
                outcome = ret.return_value
            except Exception as e:  # a job that raised past run_job (e.g. a crash in a worker)
                failed.append(f"job {i} ({job}): {type(e).__name__}: {e}")
                continue
            if getattr(outcome, "status", "FAILED") != "FINISHED":
                failed.append(f"job {i} ({job}): {getattr(outcome, 'reason', '?')}")
        return failed
