"""A single run's config and store checked before Hydra makes its output directory.

In run mode Hydra creates ``hydra.run.dir`` and writes ``.hydra/`` and the job's log before it
calls the task function, so a run rejected there would leave a directory behind. Hydra calls
its callbacks' ``on_run_start`` first, with the composed config: ``CheckRunFirst`` (registered
in ``conf/config.yaml`` as ``hydra.callbacks.check_run``) validates the config and prepares the
store there, and a bad value, an unusable ``tracking.uri`` or a run directory that cannot be
made ends the command with one line and exit code 2 with nothing made. Sweeps have their own
check (``sweeper``), before their directory too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from softmax_lab.cli import state
from softmax_lab.cli.console import report_input_error
from softmax_lab.cli.convert import to_config
from softmax_lab.config.schema import validate
from softmax_lab.errors import InputError

__all__ = ["CheckRunFirst", "make_run_dir"]


class CheckRunFirst(Callback):
    """``hydra.callbacks.check_run``: reject a bad single run before anything is created."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from softmax_lab.tracking import store

        try:
            cfg = validate(to_config(config))
            where = (store.resolve_uri(cfg.tracking.uri), cfg.tracking.experiment)
            state.prepared[where] = store.prepare_store(*where)
            make_run_dir(str(config.hydra.run.dir))
        except InputError as e:
            # SystemExit passes through Hydra's error report (it catches Exception) unprinted
            raise SystemExit(report_input_error(e, suffix="; nothing was run")) from e


def make_run_dir(run_dir: str) -> None:
    """Make the run's output directory before Hydra does (Hydra's ``now`` resolver is cached,
    so it is the same path): a directory that cannot be made (a full disk, no permission) is
    an ``InputError`` naming it, not Hydra's traceback."""
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot make the run directory {run_dir} (hydra.run.dir): {err}") from err
