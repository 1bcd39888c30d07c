"""The default sweeper: Hydra's basic grid expansion, plus what a tracked sweep needs first.

Before the first job starts it composes every job's config once and validates all of them
(reporting every bad job at once), creates the MLflow store and experiment, and opens the
sweep's parent run. A launcher with a ``prestart`` (the fused one) is handed the validated jobs
first, so it can start training them while the store is opened; nothing is recorded before.
Each job gets the parent's id and the sweep id as overrides, so the link survives any launcher,
in-process or not. At the end it closes the parent run (FAILED if any job failed) and prints
the sweep's comparison table and the command that opens the UI (``summary``).
"""

from __future__ import annotations

import hashlib
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from softmax_lab.cli import state
from softmax_lab.cli.compose import compose_jobs
from softmax_lab.cli.console import INPUT_ERROR_EXIT, SweepProgress, report_input_error
from softmax_lab.cli.convert import to_config
from softmax_lab.cli.summary import summarise_sweep
from softmax_lab.config.schema import Config, config_hash, validate
from softmax_lab.errors import ConfigError, InputError
from softmax_lab.runs.timings import mark, phase

__all__ = ["SoftmaxLabSweeper", "SoftmaxLabSweeperConf", "bookkeeping_overrides", "sweep_signature"]


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


def bookkeeping_overrides(parent_run_id: str, sweep_id: str) -> list[str]:
    """The overrides that tie a job to its sweep, quoted: Hydra reads an unquoted ``1234e567``
    as a float and ``12345678`` as an int, and the job's run would then name another sweep."""
    return [f"tracking.parent_run_id='{parent_run_id}'", f"tracking.sweep_id='{sweep_id}'"]


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


class SoftmaxLabSweeper(BasicSweeper):
    """Grid sweeps whose jobs are all validated, and tracked under one parent run."""

    def __init__(self, max_batch_size: int | None, params: dict[str, str] | None = None):
        super().__init__(max_batch_size=max_batch_size, params=params)

    def _expand(self, arguments: list[str]) -> list[list[str]]:
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(self._parse_config() + list(arguments))
        return [list(job) for batch in self.split_arguments(overrides, None) for job in batch]

    def _compose_and_validate(self, jobs: list[list[str]]) -> list[Config]:
        """Compose each job once (kept in ``self._composed`` for the launcher), check all.

        Jobs that differ only in plain values share one Hydra composition (``compose_jobs``).
        """
        assert self.hydra_context is not None and self.config is not None
        configs, problems = [], []
        self._composed: list[DictConfig] = compose_jobs(
            self.hydra_context.config_loader, self.config, jobs
        )
        for i, (job, composed) in enumerate(zip(jobs, self._composed, strict=True)):
            try:
                configs.append(validate(to_config(composed)))
            except ConfigError as e:
                problems.append(f"job {i} ({' '.join(job)}): {'; '.join(e.problems)}")
            except InputError as e:
                detail = str(e).replace("\n  ", "; ")
                problems.append(f"job {i} ({' '.join(job)}): {detail}")
        if problems:
            print(
                f"softmax-lab: {len(problems)} of {len(jobs)} jobs have invalid configs; "
                "nothing was run:\n  " + "\n  ".join(problems),
                file=sys.stderr,
            )
            raise SystemExit(INPUT_ERROR_EXIT)
        return configs

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
                from softmax_lab.tracking import run_writes

                try:
                    tracked = self._open_parent(arguments, jobs, configs, resume)
                except InputError as e:  # e.g. no server at tracking.uri
                    raise SystemExit(report_input_error(e, suffix="; nothing was run")) from e
        except BaseException:
            getattr(self.launcher, "discard_prestarted", lambda: None)()
            raise
        sweep_dir = Path(self.config.hydra.sweep.dir)  # only now: nothing made for a bad store
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        uri, parent, sweep_id, todo = tracked.uri, tracked.parent, tracked.sweep_id, tracked.todo
        extra = bookkeeping_overrides(parent, sweep_id)
        sweep = state.SweepState(
            sweep_id, len(todo), SweepProgress(len(todo)), tracked.experiment_ids
        )
        state.current[:] = [sweep]
        print(f"sweep {sweep_id}: {len(jobs)} jobs, tracked in {uri} (parent run {parent})")
        if resume:
            print(
                f"resume: {len(jobs) - len(todo)} of {len(jobs)} jobs skipped (already FINISHED "
                f"with the same config hash), {len(todo)} to run"
                + (f", under the earlier sweep {sweep_id}" if tracked.resumed else "")
            )
        status = "KILLED"
        results: Sequence[Any] = []
        try:
            if todo:
                results = self._launch(todo, [jobs[i] + extra for i in todo], tracked, sweep)
            failed = self._failures(results, [jobs[i] for i in todo], sweep)
            status = "FAILED" if failed else "FINISHED"
        finally:
            if sweep.progress is not None:
                sweep.progress.close()
            state.current.clear()
            run_writes.finish_run(uri, parent, status)
        with phase("summary"):
            summarise_sweep(
                uri,
                tracked.experiment,
                sweep_id,
                len(jobs),
                failed,
                parent,
                sweep_dir / "report",
                log_best_model=any(c.tracking.log_model == "single" for c in configs),
            )
        state.last_exit_code[0] = 1 if failed else 0
        return [results]

    def _open_parent(
        self, arguments: list[str], jobs: list[list[str]], configs: list[Config], resume: bool
    ) -> _Tracked:
        """Create the store(s) and experiment(s), then the sweep's parent run (or, resuming,
        reopen the earlier one), and decide which jobs still need to run."""
        from softmax_lab.tracking import provenance, reading, run_writes, store

        first = configs[0].tracking
        uri = store.resolve_uri(first.uri)
        experiment_id = store.prepare_store(uri, first.experiment)
        prepared = {(uri, first.experiment): experiment_id}
        for other in {(c.tracking.uri, c.tracking.experiment) for c in configs[1:]}:
            where = (store.resolve_uri(other[0]), other[1])
            prepared[where] = store.prepare_store(*where)
        signature = sweep_signature(arguments)
        todo = list(range(len(jobs)))
        resumed = reading.find_sweep_run(uri, first.experiment, signature) if resume else None
        if resume:
            todo = [i for i in todo if not _already_finished(configs[i])]
        if resumed is not None:
            parent, sweep_id = resumed
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
        return _Tracked(
            uri, first.experiment, parent, sweep_id, todo, resumed is not None, prepared
        )

    def _launch(
        self, todo: list[int], run_jobs: list[list[str]], tracked: _Tracked, sweep: Any
    ) -> Sequence[Any]:
        """Run the jobs through the launcher, with one BLAS thread.

        A job's n×10 GEMMs take OpenBLAS's single-threaded small-matrix path, so a second BLAS
        thread gains nothing there and, when the machine is busy, its spinning threads slow
        training down several times (measured: 1.4 s → 1.8–3.7 s for 10 epochs at B=200). The
        fused launcher uses the other cores instead by training its groups in threads.
        """
        from threadpoolctl import threadpool_limits

        assert self.launcher is not None
        self._hand_over(todo, run_jobs, tracked.parent, tracked.sweep_id)
        mark("first_job")
        with threadpool_limits(limits=1, user_api="blas"):
            results = self.launcher.launch(run_jobs, initial_job_idx=0)
        mark("last_job_done")
        return results

    def _hand_over(
        self, todo: list[int], run_jobs: list[list[str]], parent: str, sweep: str
    ) -> None:
        """Give the launcher the configs composed for validation, so it need not compose again
        (our fused launcher takes them; others compose as usual)."""
        state.composed.clear()
        for i, overrides in zip(todo, run_jobs, strict=True):
            cfg = self._composed[i]
            with read_write(cfg), open_dict(cfg):
                cfg.tracking.parent_run_id = parent
                cfg.tracking.sweep_id = sweep
                cfg.hydra.overrides.task = list(overrides)
            state.composed[tuple(overrides)] = cfg

    @staticmethod
    def _failures(
        results: Sequence[Any], jobs: list[list[str]], sweep: state.SweepState
    ) -> list[str]:
        """One line per failed job, from the jobs' own outcomes (any launcher)."""
        failed = []
        for i, (ret, job) in enumerate(zip(results, jobs, strict=True)):
            try:
                outcome = ret.return_value
            except Exception as e:  # a job that raised past run_job (e.g. a crash in a worker)
                failed.append(f"job {i} ({' '.join(job)}): {type(e).__name__}: {e}")
                continue
            if getattr(outcome, "status", "FAILED") != "FINISHED":
                failed.append(f"job {i} ({' '.join(job)}): {getattr(outcome, 'reason', '?')}")
        return failed
