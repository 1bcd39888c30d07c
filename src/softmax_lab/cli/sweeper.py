"""The default sweeper: Hydra's basic grid expansion, plus what a tracked sweep needs first.

Before the first job starts it composes every job's config once and validates all of them
(reporting every bad job at once), creates the MLflow store and experiment, and opens the
sweep's parent run. Each job gets the parent's id and the sweep id as overrides, so the link
survives any launcher, in-process or not. At the end it closes the parent run (FAILED if any
job failed) and prints the sweep's comparison table and the command that opens the UI.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from softmax_lab.cli import state
from softmax_lab.cli.console import SweepProgress
from softmax_lab.cli.convert import to_config
from softmax_lab.config import Config, ConfigError, validate

__all__ = ["SoftmaxLabSweeper", "SoftmaxLabSweeperConf"]


@dataclass
class SoftmaxLabSweeperConf:
    """``hydra/sweeper=softmax_lab`` (the default in conf/config.yaml)."""

    _target_: str = "hydra_plugins.softmax_lab.SoftmaxLabSweeper"
    max_batch_size: int | None = None
    params: dict[str, str] | None = None


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
        assert self.hydra_context is not None and self.config is not None
        loader = self.hydra_context.config_loader
        configs, problems = [], []
        for i, job in enumerate(jobs):
            composed: DictConfig = loader.load_sweep_config(self.config, job)
            try:
                configs.append(validate(to_config(composed)))
            except ConfigError as e:
                detail = str(e).removeprefix("invalid config:\n  ").replace("\n  ", "; ")
                problems.append(f"job {i} ({' '.join(job)}): {detail}")
        if problems:
            print(
                f"softmax-lab: {len(problems)} of {len(jobs)} jobs have invalid configs; "
                "nothing was run:\n  " + "\n  ".join(problems),
                file=sys.stderr,
            )
            raise SystemExit(2)
        return configs

    def sweep(self, arguments: list[str]) -> Any:
        from softmax_lab import tracking

        assert self.config is not None and self.launcher is not None
        jobs = self._expand(arguments)
        configs = self._compose_and_validate(jobs)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        # the store, the experiment and the parent run exist before any job writes
        first = configs[0].tracking
        uri = tracking.resolve_uri(first.uri)
        experiment_id = tracking.prepare_store(uri, first.experiment)
        for other in {(c.tracking.uri, c.tracking.experiment) for c in configs[1:]}:
            tracking.prepare_store(tracking.resolve_uri(other[0]), other[1])
        sweep_id = uuid.uuid4().hex[:8]
        parent = tracking.start_sweep_run(
            uri,
            experiment_id,
            sweep_id=sweep_id,
            run_name=f"sweep {sweep_id}: {' '.join(arguments)}"[:250],
            tags={
                "sl.overrides": " ".join(arguments),
                "sl.jobs": str(len(jobs)),
                **tracking.environment_tags(),
            },
        )
        extra = [f"tracking.parent_run_id={parent}", f"tracking.sweep_id={sweep_id}"]
        sweep = state.SweepState(sweep_id, len(jobs), SweepProgress(len(jobs)))
        state.current[:] = [sweep]
        print(f"sweep {sweep_id}: {len(jobs)} jobs, tracked in {uri} (parent run {parent})")
        status = "KILLED"
        try:
            results = self.launcher.launch([job + extra for job in jobs], initial_job_idx=0)
            failed = self._failures(results, jobs, sweep)
            status = "FAILED" if failed else "FINISHED"
        finally:
            if sweep.progress is not None:
                sweep.progress.close()
            state.current.clear()
            tracking.finish_run(uri, parent, status)
        self._summarise(uri, first.experiment, sweep_id, len(jobs), failed)
        state.last_exit_code[0] = 1 if failed else 0
        return [results]

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

    @staticmethod
    def _summarise(uri: str, experiment: str, sweep_id: str, n: int, failed: list[str]) -> None:
        from softmax_lab import report, tracking

        table = report.compare_table(tracking.runs_frame(uri, experiment, sweep_id=sweep_id))
        print(f"\nsweep {sweep_id}: {n - len(failed)} of {n} jobs finished, best first:")
        print(report.format_table(table, "table"))
        if failed:
            print(f"\n{len(failed)} job(s) failed:\n  " + "\n  ".join(failed))
        print(
            f"\ncompare again: softmax-lab compare --experiment {experiment} --sweep {sweep_id}"
            f"\nopen the UI:   softmax-lab ui   (then open experiment '{experiment}')"
        )
