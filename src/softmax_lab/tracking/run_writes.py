"""Writing to any run by its id: the runs no ``RunRecorder`` holds.

A sweep's parent run (started, reopened on resume, given the sweep's pictures, finished), tags
set on a run after it finished (e.g. a rerun's verdict), and the runs a dead sweep left
RUNNING, closed by its resume (``close_dead_children``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException

from softmax_lab.errors import StoreFullError
from softmax_lab.tracking.reading import find_child_runs, reader_for, run_error
from softmax_lab.tracking.recorder import RunStatus, batches, terminate_run
from softmax_lab.tracking.store import resolve_uri, retry_locked


def start_sweep_run(
    uri: str | None,
    experiment_id: str,
    *,
    sweep_id: str,
    run_name: str,
    tags: Mapping[str, Any],
) -> str:
    """Create the RUNNING parent run of a sweep (``sl.role = "sweep"``); return its run id.

    Raises
    ------
    StoreFullError
        Naming the store, when its database or disk is full.
    """
    uri = resolve_uri(uri)
    client = MlflowClient(uri)
    all_tags = {**{k: str(v) for k, v in tags.items()}, "sl.role": "sweep", "sl.sweep_id": sweep_id}
    try:
        run = retry_locked(
            "create the sweep's parent run",
            lambda: client.create_run(experiment_id, run_name=run_name, tags=all_tags),
        )
    except StoreFullError as err:  # before any job: the sweep stops with this one line
        raise StoreFullError(f"tracking URI {uri!r}: the store is full ({err})") from err
    return str(run.info.run_id)


def finish_run(
    uri: str | None, run_id: str, status: RunStatus | str, reason: str | None = None
) -> None:
    """Terminate any run by id (e.g. a sweep's parent); ``reason`` sets ``sl.failure_reason``."""
    terminate_run(MlflowClient(resolve_uri(uri)), run_id, status, reason)


def log_files(
    uri: str | None, run_id: str, paths: Iterable[str | Path], artifact_path: str | None = None
) -> None:
    """Log local files into the artifact folder ``artifact_path`` of any run, open or finished.

    For runs no ``RunRecorder`` holds, e.g. a sweep's parent run getting the sweep's pictures
    after its jobs ended. Every file is checked before the first is logged.

    Raises
    ------
    FileNotFoundError
        If a path is not an existing file.
    TrackingError
        If ``run_id`` is not in the store.
    """
    files = [Path(p) for p in paths]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"log_files: expected existing files, missing {missing}")
    uri = resolve_uri(uri)
    client = MlflowClient(uri)
    try:
        client.get_run(run_id)
        for f in files:
            client.log_artifact(run_id, str(f), artifact_path=artifact_path)
    except MlflowException as err:
        raise run_error(uri, run_id, err) from err


def set_run_tags(uri: str | None, run_id: str, tags: Mapping[str, Any]) -> None:
    """Set (or overwrite) tags of any run by id, e.g. a verdict after the run finished."""
    _, client = reader_for(uri)
    for chunk in batches([RunTag(k, str(v)) for k, v in tags.items()]):

        def write(chunk: list[RunTag] = chunk) -> None:
            client.log_batch(run_id, tags=chunk, synchronous=True)

        retry_locked(f"tag run {run_id}", write)


def log_metrics(uri: str | None, run_id: str, metrics: Mapping[str, float], *, step: int) -> None:
    """Log ``metrics`` at ``step`` on any run by id (e.g. a study's best values on its parent)."""
    _, client = reader_for(uri)
    now = int(time.time() * 1000)
    points = [Metric(k, float(v), now, step) for k, v in metrics.items()]

    def write() -> None:
        client.log_batch(run_id, metrics=points, synchronous=True)

    retry_locked(f"log metrics of run {run_id}", write)


def reopen_run(uri: str | None, run_id: str) -> None:
    """Set a finished or killed run back to RUNNING (a resumed sweep's parent)."""
    client = MlflowClient(resolve_uri(uri))
    retry_locked(f"reopen run {run_id}", lambda: client.update_run(run_id, status="RUNNING"))


def close_dead_children(
    uri: str | None, experiment_ids: list[str], parent_run_id: str, reason: str
) -> list[str]:
    """End as KILLED, with ``reason`` as ``sl.failure_reason``, every RUNNING child run of
    ``parent_run_id`` in ``experiment_ids``; return their ids.

    Only for a caller that holds the sweep's lock (``sweep_lock``): then no live process
    records those runs, and RUNNING means their process died (e.g. killed with SIGKILL).
    """
    dead = find_child_runs(uri, experiment_ids, parent_run_id, status="RUNNING")
    client = MlflowClient(resolve_uri(uri))
    for run_id in dead:
        terminate_run(client, run_id, "KILLED", reason)
    return dead
