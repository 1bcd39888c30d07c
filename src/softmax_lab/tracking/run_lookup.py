"""One run by its id: what rerun reads back, i.e. its info, its text artifacts, its files.

``run_info`` also takes a unique prefix of the id (``compare`` shows 8 characters).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from softmax_lab.errors import TrackingError
from softmax_lab.tracking.reading import reader_for, run_error

__all__ = ["LoggedRun", "download_artifact", "read_text_artifact", "run_info"]


def download_artifact(uri: str | None, run_id: str, path: str, dst_dir: str | Path) -> Path:
    """Download the artifact file or directory ``path`` of ``run_id`` into ``dst_dir``.

    Returns the local path: ``dst_dir / <last part of path>``, e.g. ``dst_dir / "theta.npy"``
    for ``params/theta.npy``.
    """
    uri, client = reader_for(uri)
    Path(dst_dir).mkdir(parents=True, exist_ok=True)
    try:
        return Path(client.download_artifacts(run_id, path, str(dst_dir)))
    except MlflowException as err:
        raise run_error(uri, run_id, err) from err


@dataclass(frozen=True)
class LoggedRun:
    """One run as read back: where it is, how it ended, its params and tags (strings)."""

    uri: str  # the normalised tracking URI it was read from
    run_id: str
    run_name: str
    experiment: str
    status: str  # RUNNING, FINISHED, FAILED, KILLED, …
    params: dict[str, str]
    tags: dict[str, str]


def _find_by_prefix(client: MlflowClient, uri: str, run_id: str) -> Run:
    """The one run of an active experiment whose id starts with ``run_id`` (e.g. 8 hex digits)."""
    if re.fullmatch(r"[0-9a-f]{1,3}", run_id):  # would match too many runs to be meant
        raise TrackingError(
            f"run id prefix {run_id!r} is too short: give at least 4 characters of the id "
            "(compare shows 8)"
        )
    experiments = [str(e.experiment_id) for e in client.search_experiments()]
    runs = (
        client.search_runs(experiments, f"attributes.run_id LIKE '{run_id}%'", max_results=3)
        if experiments and re.fullmatch(r"[0-9a-f]{4,31}", run_id)
        else []
    )
    if not runs:
        raise TrackingError(f"run {run_id!r} not found in {uri}")
    if len(runs) > 1:
        ids = ", ".join(r.info.run_id for r in runs)
        raise TrackingError(f"run id prefix {run_id!r} is ambiguous in {uri}: matches {ids}, …")
    return runs[0]


def run_info(uri: str | None, run_id: str) -> LoggedRun:
    """Read one run by its id, or by a unique prefix of it (``compare`` shows 8 characters).

    Raises
    ------
    TrackingError
        No store at a SQLite URI, no such run, an ambiguous prefix, or a server that denies
        the user access to it.
    """
    uri, client = reader_for(uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        if err.error_code not in (
            "RESOURCE_DOES_NOT_EXIST",
            "INVALID_PARAMETER_VALUE",
            "PERMISSION_DENIED",  # a server with auth: no such run is hidden, no access too
        ):
            raise
        try:
            run = _find_by_prefix(client, uri, run_id)
        except TrackingError:
            if err.error_code == "PERMISSION_DENIED":
                raise run_error(uri, run_id, err) from err
            raise
    experiment = client.get_experiment(run.info.experiment_id)
    return LoggedRun(
        uri=uri,
        run_id=str(run.info.run_id),
        run_name=str(run.info.run_name or ""),
        experiment=str(experiment.name),
        status=str(run.info.status),
        params=dict(run.data.params),
        tags=dict(run.data.tags),
    )


def read_text_artifact(uri: str | None, run_id: str, path: str) -> str:
    """The text of the artifact file ``path`` of ``run_id`` (e.g. ``config.yaml``).

    Raises
    ------
    TrackingError
        Unknown run, or the run has no artifact ``path``.
    """
    uri, client = reader_for(uri)
    with tempfile.TemporaryDirectory(prefix="softmax-lab-") as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except MlflowException as err:
            if err.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            try:
                client.get_run(run_id)  # an unknown run is the better message
            except MlflowException as missing:
                raise run_error(uri, run_id, missing) from missing
            raise TrackingError(f"run {run_id} has no artifact {path!r} in {uri}") from err
        return Path(local).read_text(encoding="utf-8")
