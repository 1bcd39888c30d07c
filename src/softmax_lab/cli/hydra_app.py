"""``softmax-lab train``: Hydra composes the config, the task function runs one job."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from softmax_lab.cli import state
from softmax_lab.cli.console import EpochTable
from softmax_lab.cli.convert import to_config
from softmax_lab.config.schema import Config, validate
from softmax_lab.errors import ConfigError, TrackingError
from softmax_lab.runs import timings

if TYPE_CHECKING:
    from softmax_lab.runs.job import JobContext, JobOutcome

__all__ = ["CONF_DIR", "run_train"]

# src/softmax_lab/cli/hydra_app.py → the checkout's conf/ (the package is installed editable)
CONF_DIR = Path(__file__).resolve().parents[3] / "conf"
INTERNAL_OVERRIDES = ("tracking.parent_run_id=", "tracking.sweep_id=")


def register_configs() -> None:
    """The schema of the primary config (our sweeper registers in ``hydra_plugins``)."""
    ConfigStore.instance().store(name="base_config", node=Config)


def user_overrides(overrides: list[str]) -> list[str]:
    """The command-line overrides without those the sweeper adds for bookkeeping."""
    return [o for o in overrides if not o.startswith(INTERNAL_OVERRIDES)]


def job_context(config: Config) -> JobContext:
    """The running job's context (output dir, job number, overrides) from Hydra, and the
    experiment id when the sweep already prepared the job's store."""
    from softmax_lab.runs.job import JobContext
    from softmax_lab.tracking import store

    hc = HydraConfig.get()
    sweep = state.current[0] if state.current else None
    where = (store.resolve_uri(config.tracking.uri), config.tracking.experiment)
    return JobContext(
        output_dir=Path(hc.runtime.output_dir),
        job_num=hc.job.num if hc.mode == RunMode.MULTIRUN else None,
        overrides=user_overrides(list(hc.overrides.task)),
        experiment_id=sweep.experiment_ids.get(where) if sweep is not None else None,
    )


def report_outcome(outcome: JobOutcome) -> None:
    """One line per finished job, and the sweep bar's tick."""
    line = f"run {outcome.run_id}: {outcome.status}" + (
        f" ({outcome.reason})" if outcome.reason else ""
    )
    sweep = state.current[0] if state.current else None
    if sweep is not None and sweep.progress is not None:
        sweep.progress.write(line)  # above the sweep's bar, not through it
    else:
        print(line, flush=True)
    if sweep is not None:
        if sweep.progress is not None:
            sweep.progress.finish(outcome.status)
    elif outcome.status != "FINISHED":
        state.last_exit_code[0] = 1


def task(cfg: DictConfig) -> JobOutcome | None:
    """Hydra's task function: one job, reported on the terminal and tracked in MLflow.

    A single run's config is validated and its store prepared first: a bad value or an
    unusable ``tracking.uri`` is one line on stderr and exit code 2, before anything is printed
    or created (a sweep's sweeper does the same for all its jobs at once).
    """
    from softmax_lab.runs.job import run_job, run_name
    from softmax_lab.tracking import store

    sweep = state.current[0] if state.current else None
    try:
        config = validate(to_config(cfg))
        ctx = job_context(config)
        if ctx.experiment_id is None:
            experiment_id = store.prepare_store(config.tracking.uri, config.tracking.experiment)
            ctx = replace(ctx, experiment_id=experiment_id)
    except (ConfigError, TrackingError) as e:
        if sweep is not None:
            raise  # the sweeper checked its jobs: this is not a user's single run
        print(f"softmax-lab: {e}; nothing was run", file=sys.stderr)
        state.last_exit_code[0] = 2
        return None
    label = run_name(config, ctx.overrides)
    if sweep is not None and sweep.progress is not None:
        sweep.progress.start(label)
    table = EpochTable(config.optim.epochs, title="" if sweep else f"run: {label}")
    try:
        outcome = run_job(config, replace(ctx, on_epoch=table))
    finally:
        table.close()
    report_outcome(outcome)
    return outcome


def run_train(argv: list[str]) -> int:
    """Run ``softmax-lab train ARGV`` through Hydra; the exit code says if any job failed."""
    if not (CONF_DIR / "config.yaml").is_file():
        print(
            f"softmax-lab: config directory {CONF_DIR} not found; install from a checkout with "
            "`pip install -e .`",
            file=sys.stderr,
        )
        return 2
    register_configs()
    state.last_exit_code[0] = 0
    sys.argv = ["softmax-lab", *argv]
    try:
        hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(task)()
    except ConfigError as e:
        print(f"softmax-lab: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("softmax-lab: interrupted; the open runs were closed as KILLED", file=sys.stderr)
        return 130
    finally:
        timings.dump()
    return state.last_exit_code[0]
