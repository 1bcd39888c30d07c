"""Reading runs back: a frame of an experiment's runs, metric histories, resume lookups.

One run by its id (its info, text artifacts and files) is read by ``run_lookup``.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from softmax_lab.errors import TrackingError
from softmax_lab.tracking.recorder import METRIC_KEYS
from softmax_lab.tracking.store import check_usable, normalize_uri, sqlite_parts

FRAME_COLUMNS = (
    "run_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "parent_run_id",
    "sweep_id",
)

PAGE_SIZE = 1000


def reader_for(uri: str | None) -> tuple[str, MlflowClient]:
    """A client for an existing store: reading never creates an empty SQLite store.

    Raises ``TrackingError`` for a store that cannot be used (``check_usable``) or is missing.
    """
    uri = normalize_uri(uri)
    check_usable(uri, write=False)
    parts = sqlite_parts(uri)
    if parts is not None and not parts[0].is_file():
        raise TrackingError(
            f"no MLflow store at {parts[0]} ({uri}): nothing was tracked there yet; "
            "pass the tracking URI the runs were logged to"
        )
    return uri, MlflowClient(uri)


def experiment_id_of(client: MlflowClient, uri: str, experiment: str) -> str:
    """The id of the active experiment named ``experiment`` in the store ``client`` reads.

    Raises ``TrackingError`` for an unknown or deleted one (naming the existing ones) or a
    server's 403.
    """
    try:
        found = client.get_experiment_by_name(experiment)
    except MlflowException as err:
        if err.error_code != "PERMISSION_DENIED":
            raise
        raise TrackingError(denied(uri, f"experiment {experiment!r}")) from err
    if found is None or found.lifecycle_stage != "active":
        names = sorted(e.name for e in client.search_experiments())
        raise TrackingError(
            f"experiment {experiment!r} not found in {uri}; existing experiments: "
            + (", ".join(repr(n) for n in names) or "none")
        )
    return str(found.experiment_id)


def latest_experiment(uri: str | None) -> str | None:
    """Name of the experiment whose newest run started last; None if the store holds no runs."""
    uri = normalize_uri(uri)
    check_usable(uri, write=False)
    parts = sqlite_parts(uri)
    if parts is not None and not parts[0].is_file():
        return None
    client = MlflowClient(uri)
    experiments = {str(e.experiment_id): e.name for e in client.search_experiments()}
    if not experiments:
        return None
    newest = client.search_runs(list(experiments), max_results=1, order_by=["start_time DESC"])
    return experiments[str(newest[0].info.experiment_id)] if newest else None


def _search(client: MlflowClient, experiment_id: str, filter_string: str) -> list[Run]:
    runs: list[Run] = []
    token: str | None = None
    while True:
        try:
            page = client.search_runs(
                [experiment_id], filter_string, max_results=PAGE_SIZE, page_token=token
            )
        except MlflowException as err:
            if err.error_code != "INVALID_PARAMETER_VALUE":
                raise
            raise TrackingError(f"invalid run filter {filter_string!r}: {err.message}") from err
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _tag_filter(key: str, value: str) -> str:
    if "'" in value:
        raise ValueError(f"{key} must not contain a single quote, got {value!r}")
    return f"tags.`{key}` = '{value}'"


def _timestamp(ms: int | None) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC") if ms else pd.NaT


def runs_frame(
    uri: str | None,
    experiment: str,
    *,
    sweep_id: str | None = None,
    filter_string: str | None = None,
    include_parents: bool = False,
) -> pd.DataFrame:
    """One row per job run of ``experiment``, newest first.

    Columns: ``run_id``, ``run_name``, ``status``, ``start_time``, ``end_time`` (UTC timestamps,
    NaT while running), ``parent_run_id``, ``sweep_id``, then ``params.<key>`` (strings, as
    logged), ``metrics.<key>`` (the last value logged, i.e. the last epoch's) and ``tags.<key>``.

    Parameters
    ----------
    sweep_id : str, optional
        Only the runs of this sweep.
    filter_string : str, optional
        An MLflow search filter, e.g. ``"params.`optim.lr` = '0.1'"``; ANDed with ``sweep_id``.
    include_parents : bool
        Also return the sweeps' parent runs (``sl.role = "sweep"``).

    Raises
    ------
    TrackingError
        No store at a SQLite URI, an unknown experiment (the message lists the existing ones),
        or a filter MLflow cannot parse.
    """
    uri, client = reader_for(uri)
    experiment_id = experiment_id_of(client, uri, experiment)
    clauses = [filter_string] if filter_string else []
    if sweep_id is not None:
        clauses.append(_tag_filter("sl.sweep_id", sweep_id))
    rows = []
    for run in _search(client, experiment_id, " and ".join(clauses)):
        tags = run.data.tags
        if tags.get("sl.role") == "sweep" and not include_parents:
            continue
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "status": run.info.status,
            "start_time": _timestamp(run.info.start_time),
            "end_time": _timestamp(run.info.end_time),
            "parent_run_id": tags.get("mlflow.parentRunId"),
            "sweep_id": tags.get("sl.sweep_id"),
        }
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        row.update({f"tags.{k}": v for k, v in tags.items()})
        rows.append(row)
    keys = {k for row in rows for k in row if k not in FRAME_COLUMNS}
    metrics = [f"metrics.{k}" for k in METRIC_KEYS if f"metrics.{k}" in keys]
    columns = [
        *FRAME_COLUMNS,
        *sorted(k for k in keys if k.startswith("params.")),
        *metrics,
        *sorted(k for k in keys if k.startswith("metrics.") and k not in metrics),
        *sorted(k for k in keys if k.startswith("tags.")),
    ]
    return pd.DataFrame(rows, columns=columns)


def denied(uri: str, what: str) -> str:
    """The message for a server's 403 (MLflow's basic-auth app: no permission on ``what``)."""
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    return (
        f"user {user!r} has no permission to read {what} in {uri}; ask the store's admin "
        "to grant READ on its experiment"
    )


def run_error(uri: str, run_id: str, err: MlflowException) -> Exception:
    if err.error_code == "RESOURCE_DOES_NOT_EXIST":
        return TrackingError(f"run {run_id!r} not found in {uri}")
    if err.error_code == "PERMISSION_DENIED":
        return TrackingError(denied(uri, f"run {run_id!r}"))
    return err


def metric_history(uri: str | None, run_id: str, key: str) -> list[tuple[int, float]]:
    """Every ``(step, value)`` logged for metric ``key`` of ``run_id``, sorted by step.

    An unknown ``key`` gives an empty list; an unknown run raises ``TrackingError``.
    """
    uri, client = reader_for(uri)
    try:
        points = client.get_metric_history(run_id, key)
        if not points:  # empty for an unknown run too: tell the two apart (a whole run's read)
            client.get_run(run_id)
    except MlflowException as err:
        raise run_error(uri, run_id, err) from err
    points = sorted(points, key=lambda p: (p.step, p.timestamp))
    return [(int(p.step), float(p.value)) for p in points]


def run_tags(uri: str | None, run_id: str) -> dict[str, str]:
    """Every tag of ``run_id``.

    Raises
    ------
    TrackingError
        An unknown run, or a server that denies the user access to it.
    """
    uri, client = reader_for(uri)
    try:
        return dict(client.get_run(run_id).data.tags)
    except MlflowException as err:
        raise run_error(uri, run_id, err) from err


def find_runs_by_config_hash(
    uri: str | None, experiment: str, config_hash: str
) -> list[tuple[str, str]]:
    """``(run_id, status)`` of the runs tagged ``sl.config_hash = config_hash``, newest first.

    Used to resume a sweep: a job whose hash already has a FINISHED run can be skipped. A store
    or experiment that does not exist yet holds no such run, so the list is empty.
    """
    if not re.fullmatch(r"[0-9a-fA-F]+", config_hash):
        raise ValueError(f"config_hash must be a hex digest, got {config_hash!r}")
    uri = normalize_uri(uri)
    parts = sqlite_parts(uri)
    if parts is not None and not parts[0].is_file():
        return []
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage != "active":
        return []
    runs = _search(client, str(found.experiment_id), _tag_filter("sl.config_hash", config_hash))
    return [(run.info.run_id, run.info.status) for run in runs]


def find_sweep_run(uri: str | None, experiment: str, signature: str) -> tuple[str, str] | None:
    """``(run_id, sweep_id)`` of the newest sweep parent tagged ``sl.sweep_signature``, if any.

    Used by ``resume=true``: a resumed sweep carries on under the parent of the sweep it
    resumes, so all its jobs stay together.
    """
    uri = normalize_uri(uri)
    parts = sqlite_parts(uri)
    if parts is not None and not parts[0].is_file():
        return None
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage != "active":
        return None
    filter_string = f"{_tag_filter('sl.sweep_signature', signature)} and tags.`sl.role` = 'sweep'"
    runs = _search(client, str(found.experiment_id), filter_string)
    if not runs:
        return None
    newest = max(runs, key=lambda r: r.info.start_time or 0)
    return str(newest.info.run_id), str(newest.data.tags.get("sl.sweep_id", ""))


def find_child_runs(
    uri: str | None, experiment_ids: list[str], parent_run_id: str, *, status: str | None = None
) -> list[str]:
    """Ids of the runs in ``experiment_ids`` whose ``mlflow.parentRunId`` is ``parent_run_id``
    (a sweep's jobs), only those with ``status`` (e.g. ``"RUNNING"``) if given."""
    if not experiment_ids:
        return []
    uri, client = reader_for(uri)
    clauses = [_tag_filter("mlflow.parentRunId", parent_run_id)]
    if status is not None:
        clauses.append(f"attributes.status = '{status}'")
    found: list[str] = []
    for experiment_id in experiment_ids:
        found += [r.info.run_id for r in _search(client, experiment_id, " and ".join(clauses))]
    return found
