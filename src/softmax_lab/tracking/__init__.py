"""Everything MLflow: where runs are stored, how a job's run is recorded, and reading runs back.

This package is the only place that imports mlflow. It talks to stores through ``MlflowClient``
(no global active run), so several runs can be open in one process. Its modules:

- ``store``: tracking URIs, creating stores and experiments (``prepare_store``), lock retries,
  ``TrackingError``;
- ``sqlite_file``: SQLite store files, created from a pre-migrated template, in WAL mode;
- ``recorder``: ``RunRecorder``, one job's run, and the metric keys;
- ``run_writes``: writes to any run by id (a sweep's parent run, tags after the fact);
- ``provenance``: ``environment_tags``, the version, git commit and BLAS a run ran with;
- ``reading``: reading runs back (``runs_frame``, ``metric_history``, the lookups of resume);
- ``run_lookup``: one run by its id or a prefix of it (``run_info``, text artifacts, downloads).

Import from here (``from softmax_lab import tracking``); the names below are re-exported.

Names other modules code against:

- metrics, one point per epoch at ``step = epoch`` (1-based): ``train/loss``, ``train/error``,
  ``test/loss``, ``test/error``, ``epoch_seconds``;
- params: ``config.schema.flatten(cfg)`` with values stringified (``None`` as ``"None"``);
- tags: ``sl.role`` (``"job"`` | ``"sweep"``), ``sl.sweep_id``, ``sl.config_hash``, … (see
  ``environment_tags``), plus MLflow's ``mlflow.parentRunId`` and ``mlflow.runName``;
- artifacts: ``params/<name>.npy``, ``config.yaml``, ``overrides.yaml``, ``plots/…``.

SQLite stores get three things plain MLflow does not give them (see ``prepare_store``): creation
from a pre-migrated template (fast, and atomic, so parallel jobs never race through the schema
migrations), WAL journal mode (readers and the writer stop blocking each other), and a retry with
backoff around writes that still meet ``database is locked``.
"""

from __future__ import annotations

from softmax_lab.errors import TrackingError
from softmax_lab.tracking.provenance import environment_tags
from softmax_lab.tracking.reading import (
    FRAME_COLUMNS,
    find_runs_by_config_hash,
    find_sweep_run,
    latest_experiment,
    metric_history,
    runs_frame,
)
from softmax_lab.tracking.recorder import METRIC_KEYS, RunRecorder, RunStatus
from softmax_lab.tracking.run_lookup import (
    LoggedRun,
    download_artifact,
    read_text_artifact,
    run_info,
)
from softmax_lab.tracking.run_writes import (
    finish_run,
    log_files,
    reopen_run,
    set_run_tags,
    start_sweep_run,
)
from softmax_lab.tracking.store import (
    DEFAULT_TRACKING_URI,
    artifact_root_for,
    prepare_store,
    resolve_uri,
)

__all__ = [
    "DEFAULT_TRACKING_URI",
    "FRAME_COLUMNS",
    "METRIC_KEYS",
    "LoggedRun",
    "RunRecorder",
    "RunStatus",
    "TrackingError",
    "artifact_root_for",
    "download_artifact",
    "environment_tags",
    "find_runs_by_config_hash",
    "find_sweep_run",
    "finish_run",
    "latest_experiment",
    "log_files",
    "metric_history",
    "prepare_store",
    "read_text_artifact",
    "reopen_run",
    "resolve_uri",
    "run_info",
    "runs_frame",
    "set_run_tags",
    "start_sweep_run",
]
