"""Everything MLflow: where runs are stored, how a job's run is recorded, and reading runs back.

This is the only module that imports mlflow. It talks to stores through ``MlflowClient`` (no
global active run), so several runs can be open in one process.

Names other modules code against:

- metrics, one point per epoch at ``step = epoch`` (1-based): ``train/loss``, ``train/error``,
  ``test/loss``, ``test/error``, ``epoch_seconds``;
- params: ``softmax_lab.config.flatten(cfg)`` with values stringified (``None`` as ``"None"``);
- tags: ``sl.role`` (``"job"`` | ``"sweep"``), ``sl.sweep_id``, ``sl.config_hash``, … (see
  ``environment_tags``), plus MLflow's ``mlflow.parentRunId`` and ``mlflow.runName``;
- artifacts: ``params/<name>.npy``, ``config.yaml``, ``overrides.yaml``, ``plots/…``.

SQLite stores get three things plain MLflow does not give them (see ``prepare_store``): creation
from a pre-migrated template (fast, and atomic, so parallel jobs never race through the schema
migrations), WAL journal mode (readers and the writer stop blocking each other), and a retry with
backoff around writes that still meet ``database is locked``.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.exceptions import MlflowException
from numpy.typing import ArrayLike

from softmax_lab import __version__
from softmax_lab.trainer import EpochMetrics

__all__ = [
    "DEFAULT_TRACKING_URI",
    "METRIC_KEYS",
    "LoggedRun",
    "RunRecorder",
    "RunStatus",
    "TrackingError",
    "artifact_root_for",
    "download_artifact",
    "environment_tags",
    "find_runs_by_config_hash",
    "finish_run",
    "latest_experiment",
    "log_files",
    "metric_history",
    "prepare_store",
    "read_text_artifact",
    "resolve_uri",
    "run_info",
    "runs_frame",
    "set_run_tags",
    "start_sweep_run",
]

logger = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///outputs/mlflow.db"
METRIC_KEYS = ("train/loss", "train/error", "test/loss", "test/error", "epoch_seconds")
RunStatus = Literal["FINISHED", "FAILED", "KILLED"]
RUN_STATUSES: tuple[RunStatus, ...] = ("FINISHED", "FAILED", "KILLED")
FRAME_COLUMNS = (
    "run_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "parent_run_id",
    "sweep_id",
)

BATCH_LIMIT = 100  # MLflow accepts at most 100 params or tags per log_batch call
TAG_VALUE_LIMIT = 8000  # MLflow rejects longer tag values
LOCK_RETRIES = 6  # each attempt already waits out MLflow's 20 s SQLite busy timeout
PAGE_SIZE = 1000

_T = TypeVar("_T")


class TrackingError(ValueError):
    """A tracking store, experiment or run is not what the caller asked for."""


# --- where runs are stored ------------------------------------------------------------------


def _sqlite_parts(uri: str) -> tuple[Path, str] | None:
    """``(database path, "?query" or "")`` of a file-backed SQLite URI; None for anything else."""
    if not uri.startswith("sqlite:///"):  # "sqlite://" alone is an in-memory database
        return None
    path, sep, query = uri.removeprefix("sqlite:///").partition("?")
    if path in ("", ":memory:"):
        return None
    return Path(path), sep + query


def _normalize_uri(uri: str | None) -> str:
    """Apply the precedence and make a SQLite path absolute; touch nothing on disk."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    parts = _sqlite_parts(uri)
    if parts is None:
        return uri
    path, query = parts
    if "%" in str(path):  # SQLAlchemy would percent-decode it and open another file
        raise TrackingError(f"SQLite store path must not contain '%', got {str(path)!r}")
    absolute = Path(os.path.abspath(path.expanduser()))
    return f"sqlite:///{absolute.as_posix()}{query}"


def resolve_uri(uri: str | None) -> str:
    """The tracking URI to use: ``uri``, else ``$MLFLOW_TRACKING_URI``, else the default.

    A SQLite URI gets an absolute path (relative paths are taken from the current directory, so
    every process of a sweep agrees on one file) and its directory is created. Other schemes
    (``http://``, ``postgresql://``, …) are returned untouched.

    Parameters
    ----------
    uri : str or None
        e.g. ``"sqlite:///outputs/mlflow.db"`` or ``"http://127.0.0.1:5000"``.

    Returns
    -------
    str
        e.g. ``"sqlite:////home/me/lab/outputs/mlflow.db"``.
    """
    uri = _normalize_uri(uri)
    parts = _sqlite_parts(uri)
    if parts is not None:
        parts[0].parent.mkdir(parents=True, exist_ok=True)
    return uri


def artifact_root_for(uri: str) -> str | None:
    """Where a SQLite store keeps artifacts: ``<directory of the db>/mlartifacts`` as a file URI.

    Returns None for servers and other databases: their artifact root is theirs to decide.
    """
    parts = _sqlite_parts(_normalize_uri(uri))
    if parts is None:
        return None
    return (parts[0].parent / "mlartifacts").as_uri()


def _template_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "softmax-lab" / "mlflow"


def _open_sqlalchemy_store(db: Path, artifact_root: str) -> None:
    """Let MLflow migrate (if empty) and verify ``db``, add its Default experiment, close it."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore  # ~1 s import: lazy

    store = SqlAlchemyStore(f"sqlite:///{db.as_posix()}", artifact_root)
    store.engine.dispose()  # closes the pooled connections: nothing of db stays open here


def _migrated_template() -> Path | None:
    """An empty store at the current schema revision, built once per machine and MLflow version.

    Building runs MLflow's alembic migrations (about a second here, several on slow disks);
    copying the result takes milliseconds. The template holds no experiment: each copy gets its
    own Default experiment when MLflow opens it. None when the cache is not writable.
    """
    directory = _template_dir()
    template = directory / f"empty-store-mlflow-{mlflow.__version__}.db"
    if template.is_file():
        return template
    tmp = directory / f".{template.name}.{uuid.uuid4().hex}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        _open_sqlalchemy_store(tmp, (directory / "unused-artifacts").as_uri())
        with closing(sqlite3.connect(tmp)) as con:
            con.execute("DELETE FROM experiments WHERE experiment_id = 0")
            con.commit()
        os.replace(tmp, template)  # atomic: a concurrent builder's identical file may win
        logger.info(
            "built MLflow store template %s in %.1f s", template, time.perf_counter() - started
        )
        return template
    except (OSError, sqlite3.Error, MlflowException) as err:
        logger.warning("could not build an MLflow store template in %s (%s)", directory, err)
        return None
    finally:
        tmp.unlink(missing_ok=True)


def _create_sqlite_store(db: Path, artifact_root: str) -> None:
    """Create the store ``db`` (migrated, in WAL mode) unless it exists; atomic across processes.

    The store is assembled under a temporary name and hard-linked into place, which fails if
    ``db`` appeared meanwhile: no process ever sees a half-migrated schema (plain MLflow runs
    the migrations in every process that finds tables missing, and parallel jobs collide).
    """
    tmp = db.with_name(f".{db.name}.{uuid.uuid4().hex}.tmp")
    started = time.perf_counter()
    try:
        template = _migrated_template()
        if template is not None:
            shutil.copyfile(template, tmp)
        try:
            _open_sqlalchemy_store(tmp, artifact_root)
        except Exception as err:  # MLflow or SQLAlchemy reject the template: build from scratch
            if template is None:
                raise
            logger.warning("MLflow rejected the store template %s (%s); removing it", template, err)
            template.unlink(missing_ok=True)
            tmp.unlink()
            tmp = tmp.with_name(tmp.name + "2")  # MLflow caches an engine per URI
            _open_sqlalchemy_store(tmp, artifact_root)
        _enable_wal(tmp)
        try:
            os.link(tmp, db)
        except FileExistsError:
            logger.debug("%s was created by another process meanwhile; using it", db)
        except OSError:  # no hard links on this file system: a plain rename, racy only for µs
            if not db.exists():
                os.replace(tmp, db)
        else:
            logger.info("created MLflow store %s in %.2f s", db, time.perf_counter() - started)
    finally:
        tmp.unlink(missing_ok=True)


def _enable_wal(db: Path) -> None:
    """Put ``db`` in WAL journal mode (persistent in the file) unless it is already.

    In WAL mode readers (``compare``, the UI) never block the writers and vice versa; writers
    still take turns, which MLflow's 20 s busy timeout and ``_retry_locked`` absorb. WAL needs
    all processes on one host (no network file systems).
    """
    try:
        with closing(sqlite3.connect(db, timeout=30)) as con:
            mode = con.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.Error as err:
        logger.warning("%s: could not switch to WAL journal mode (%s)", db, err)
        return
    if mode != "wal":
        logger.warning("%s: file system refused WAL journal mode (kept %s)", db, mode)


def _retry_locked(what: str, write: Callable[[], _T]) -> _T:
    """Run ``write``, retrying with exponential backoff while SQLite says the database is locked."""
    delay = 0.1
    for attempt in range(1, LOCK_RETRIES + 1):
        try:
            return write()
        except MlflowException as err:
            if "database is locked" not in str(err) or attempt == LOCK_RETRIES:
                raise
            pause = delay * random.uniform(1, 2)  # jitter: processes that collided drift apart
            logger.warning(
                "%s: database is locked (attempt %d of %d); retrying in %.2f s",
                what,
                attempt,
                LOCK_RETRIES,
                pause,
            )
            time.sleep(pause)
            delay *= 2
    raise AssertionError("unreachable")  # the loop returns or raises


def prepare_store(uri: str | None, experiment: str) -> str:
    """Create the store and the experiment if missing; return the experiment's id.

    Idempotent, and safe when several processes call it at once (the losers of a creation race
    read the winner's store and experiment). A new SQLite store is copied from a pre-migrated
    template and put in WAL mode; an existing one is switched to WAL mode if it is not already.
    A new experiment in a SQLite store keeps its artifacts in ``artifact_root_for(uri)``.

    Parameters
    ----------
    uri : str or None
        Tracking URI; None: ``$MLFLOW_TRACKING_URI`` or ``DEFAULT_TRACKING_URI``.
    experiment : str
        Experiment name, e.g. ``"softmax-lab"``.

    Raises
    ------
    TrackingError
        If ``experiment`` exists but is deleted.
    """
    uri = resolve_uri(uri)
    artifact_root = artifact_root_for(uri)
    parts = _sqlite_parts(uri)
    if parts is not None and artifact_root is not None:
        db = parts[0]
        if db.exists():
            _enable_wal(db)
        else:
            _create_sqlite_store(db, artifact_root)
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        try:
            return _retry_locked(
                f"create experiment {experiment!r}",
                lambda: client.create_experiment(experiment, artifact_location=artifact_root),
            )
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            found = client.get_experiment_by_name(experiment)  # another process created it
            if found is None:
                raise
    if found.lifecycle_stage != "active":
        raise TrackingError(
            f"experiment {experiment!r} in {uri} is deleted: restore it with "
            f"`mlflow experiments restore --experiment-id {found.experiment_id}` "
            "or choose another tracking.experiment"
        )
    return str(found.experiment_id)


# --- recording runs ---------------------------------------------------------------------------


def _chunks(items: list[_T], size: int = BATCH_LIMIT) -> Iterable[list[_T]]:
    return (items[i : i + size] for i in range(0, len(items), size))


def _terminate(client: MlflowClient, run_id: str, status: str, reason: str | None) -> None:
    if status not in RUN_STATUSES:
        raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
    if reason is not None:
        if len(reason) > TAG_VALUE_LIMIT:
            reason = reason[: TAG_VALUE_LIMIT - 1] + "…"
        _retry_locked(
            f"tag run {run_id}", lambda: client.set_tag(run_id, "sl.failure_reason", reason)
        )
    _retry_locked(f"terminate run {run_id}", lambda: client.set_terminated(run_id, status))


class RunRecorder:
    """One job's MLflow run: params at start, one batch of metrics per epoch, artifacts, status.

    Use it as a context manager: leaving the block finishes the run FINISHED, or FAILED with the
    exception's text in ``sl.failure_reason`` (KILLED for KeyboardInterrupt), unless ``finish``
    was called already. Every call writes through to the store at once, so a crash loses
    nothing already logged.
    """

    def __init__(self, client: MlflowClient, run_id: str, uri: str = "") -> None:
        self._client = client
        self._run_id = run_id
        self._status: str | None = None
        self.uri = uri  # the store, so others (a picture worker) can reach the run

    @classmethod
    def start(
        cls,
        uri: str | None,
        experiment_id: str,
        *,
        run_name: str,
        params: Mapping[str, Any],
        tags: Mapping[str, Any],
        parent_run_id: str | None = None,
    ) -> RunRecorder:
        """Create a RUNNING run and log all ``params`` (stringified) with it.

        Parameters
        ----------
        uri : str or None
            Tracking URI of a store made by ``prepare_store``.
        experiment_id : str
            As returned by ``prepare_store``.
        run_name : str
        params : mapping
            e.g. ``flatten(cfg)``; ``None`` is logged as ``"None"``.
        tags : mapping
            ``sl.*`` tags; ``sl.role`` defaults to ``"job"``.
        parent_run_id : str, optional
            The sweep run this job belongs to (sets ``mlflow.parentRunId``).
        """
        uri = resolve_uri(uri)
        client = MlflowClient(uri)
        all_tags = {"sl.role": "job", **{k: str(v) for k, v in tags.items()}}
        if parent_run_id is not None:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = _retry_locked(
            f"create run {run_name!r}",
            lambda: client.create_run(experiment_id, run_name=run_name, tags=all_tags),
        )
        recorder = cls(client, run.info.run_id, uri)
        try:
            for chunk in _chunks([Param(k, str(v)) for k, v in params.items()]):
                recorder._log_batch(params=chunk)
        except BaseException as err:
            try:
                recorder.finish("FAILED", reason=f"logging params failed: {err}")
            except Exception:  # the error that stopped the params is the one to report
                logger.exception("could not mark run %s FAILED", recorder.run_id)
            raise
        return recorder

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def status(self) -> str | None:
        """None while the run is open; its final status once ``finish`` was called."""
        return self._status

    def _log_batch(
        self,
        *,
        metrics: list[Metric] | None = None,
        params: list[Param] | None = None,
        tags: list[RunTag] | None = None,
    ) -> None:
        _retry_locked(
            f"log to run {self._run_id}",
            lambda: self._client.log_batch(
                self._run_id,
                metrics=metrics or [],
                params=params or [],
                tags=tags or [],
                synchronous=True,  # never queued in memory, even with MLFLOW_ENABLE_ASYNC_LOGGING
            ),
        )

    def log_epoch(self, m: EpochMetrics) -> None:
        """Log the five epoch metrics at ``step = m.epoch`` in one ``log_batch`` call."""
        now = int(time.time() * 1000)
        values = (m.train_loss, m.train_error, m.test_loss, m.test_error, m.seconds)
        metrics = [
            Metric(key, float(value), now, m.epoch)
            for key, value in zip(METRIC_KEYS, values, strict=True)
        ]
        self._log_batch(metrics=metrics)

    def log_array(self, name: str, array: ArrayLike) -> None:
        """Log ``array`` as the artifact ``params/<name>.npy`` (e.g. ``params/theta.npy``)."""
        if not name or any(c in name for c in "/\\") or name.startswith("."):
            raise ValueError(f"array name must be a plain file stem like 'theta', got {name!r}")
        with tempfile.TemporaryDirectory(prefix="softmax-lab-") as tmp:
            path = Path(tmp) / f"{name}.npy"
            np.save(path, np.asarray(array), allow_pickle=False)
            self._client.log_artifact(self._run_id, str(path), artifact_path="params")

    def log_text(self, artifact_file: str, text: str) -> None:
        """Log ``text`` as the artifact ``artifact_file`` (e.g. ``config.yaml``)."""
        self._client.log_text(self._run_id, text, artifact_file)

    def log_file(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        """Log the file ``local_path`` into the artifact folder ``artifact_path`` (None: root)."""
        path = Path(local_path)
        if not path.is_file():
            raise FileNotFoundError(f"log_file: expected an existing file, got {str(path)!r}")
        self._client.log_artifact(self._run_id, str(path), artifact_path=artifact_path)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set (or overwrite) tags; values are stringified."""
        for chunk in _chunks([RunTag(k, str(v)) for k, v in tags.items()]):
            self._log_batch(tags=chunk)

    def finish(self, status: RunStatus | str = "FINISHED", reason: str | None = None) -> None:
        """Terminate the run with ``status``; ``reason`` goes to the tag ``sl.failure_reason``.

        Raises
        ------
        RuntimeError
            If the run was finished already.
        """
        if self._status is not None:
            raise RuntimeError(f"run {self._run_id} was already finished as {self._status}")
        _terminate(self._client, self._run_id, status, reason)
        self._status = status

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._status is not None:
            return
        if exc is None:
            self.finish("FINISHED")
            return
        status: RunStatus = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        try:
            self.finish(status, reason=f"{type(exc).__name__}: {exc}")
        except Exception:  # the job's own exception is the one to propagate
            logger.exception("could not mark run %s %s", self._run_id, status)


def start_sweep_run(
    uri: str | None,
    experiment_id: str,
    *,
    sweep_id: str,
    run_name: str,
    tags: Mapping[str, Any],
) -> str:
    """Create the RUNNING parent run of a sweep (``sl.role = "sweep"``); return its run id."""
    client = MlflowClient(resolve_uri(uri))
    all_tags = {**{k: str(v) for k, v in tags.items()}, "sl.role": "sweep", "sl.sweep_id": sweep_id}
    run = _retry_locked(
        f"create sweep run {run_name!r}",
        lambda: client.create_run(experiment_id, run_name=run_name, tags=all_tags),
    )
    return str(run.info.run_id)


def finish_run(
    uri: str | None, run_id: str, status: RunStatus | str, reason: str | None = None
) -> None:
    """Terminate any run by id (e.g. a sweep's parent); ``reason`` sets ``sl.failure_reason``."""
    _terminate(MlflowClient(resolve_uri(uri)), run_id, status, reason)


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
        raise _run_error(uri, run_id, err) from err


# --- the environment a run ran in -------------------------------------------------------------


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache  # once per process: two git calls per job add up in a sweep
def _git_commit(package_dir: Path) -> str:
    """HEAD of the checkout ``package_dir`` belongs to, ``-dirty`` if tracked files changed."""
    # the package must be tracked there: an install inside some other repository's venv is not
    if _git(package_dir, "ls-files", "--error-unmatch", "__init__.py") is None:
        return ""
    commit = _git(package_dir, "rev-parse", "HEAD")
    if not commit:
        return ""
    changes = _git(package_dir, "status", "--porcelain", "--untracked-files=no")
    return commit + "-dirty" if changes else commit


@functools.cache
def _blas() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (KeyError, TypeError, ValueError):
        return "unknown"
    return f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()


def _blas_threads() -> int:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
        if counts:
            return int(max(counts))
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return os.cpu_count() or 1


def environment_tags() -> dict[str, str]:
    """``sl.version``, ``sl.git_commit``, ``sl.numpy``, ``sl.blas``, ``sl.threads`` of this process.

    ``sl.git_commit`` is ``git rev-parse HEAD`` of the checkout softmax_lab is imported from,
    with ``-dirty`` if tracked files differ from it (untracked files do not count), and ``""``
    outside a checkout. ``sl.threads`` is the BLAS pool size (threadpoolctl), else
    ``$OPENBLAS_NUM_THREADS`` / ``$OMP_NUM_THREADS``, else the CPU count.
    """
    return {
        "sl.version": __version__,
        "sl.git_commit": _git_commit(Path(__file__).resolve().parent),
        "sl.numpy": np.__version__,
        "sl.blas": _blas(),
        "sl.threads": str(_blas_threads()),
    }


# --- reading runs back ------------------------------------------------------------------------


def _reader(uri: str | None) -> tuple[str, MlflowClient]:
    """A client for an existing store: reading never creates an empty SQLite store."""
    uri = _normalize_uri(uri)
    parts = _sqlite_parts(uri)
    if parts is not None and not parts[0].is_file():
        raise TrackingError(
            f"no MLflow store at {parts[0]} ({uri}): nothing was tracked there yet; "
            "pass the tracking URI the runs were logged to"
        )
    return uri, MlflowClient(uri)


def _experiment_id(client: MlflowClient, uri: str, experiment: str) -> str:
    found = client.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage != "active":
        names = sorted(e.name for e in client.search_experiments())
        raise TrackingError(
            f"experiment {experiment!r} not found in {uri}; existing experiments: "
            + (", ".join(repr(n) for n in names) or "none")
        )
    return str(found.experiment_id)


def latest_experiment(uri: str | None) -> str | None:
    """Name of the experiment whose newest run started last; None if the store holds no runs."""
    uri = _normalize_uri(uri)
    parts = _sqlite_parts(uri)
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
    uri, client = _reader(uri)
    experiment_id = _experiment_id(client, uri, experiment)
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


def _run_error(uri: str, run_id: str, err: MlflowException) -> Exception:
    if err.error_code == "RESOURCE_DOES_NOT_EXIST":
        return TrackingError(f"run {run_id!r} not found in {uri}")
    return err


def metric_history(uri: str | None, run_id: str, key: str) -> list[tuple[int, float]]:
    """Every ``(step, value)`` logged for metric ``key`` of ``run_id``, sorted by step.

    An unknown ``key`` gives an empty list; an unknown run raises ``TrackingError``.
    """
    uri, client = _reader(uri)
    try:
        client.get_run(run_id)  # the history of an unknown run is empty rather than an error
        points = client.get_metric_history(run_id, key)
    except MlflowException as err:
        raise _run_error(uri, run_id, err) from err
    points = sorted(points, key=lambda p: (p.step, p.timestamp))
    return [(int(p.step), float(p.value)) for p in points]


def download_artifact(uri: str | None, run_id: str, path: str, dst_dir: str | Path) -> Path:
    """Download the artifact file or directory ``path`` of ``run_id`` into ``dst_dir``.

    Returns the local path: ``dst_dir / <last part of path>``, e.g. ``dst_dir / "theta.npy"``
    for ``params/theta.npy``.
    """
    uri, client = _reader(uri)
    Path(dst_dir).mkdir(parents=True, exist_ok=True)
    try:
        return Path(client.download_artifacts(run_id, path, str(dst_dir)))
    except MlflowException as err:
        raise _run_error(uri, run_id, err) from err


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
        No store at a SQLite URI, no such run, or an ambiguous prefix.
    """
    uri, client = _reader(uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        if err.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        run = _find_by_prefix(client, uri, run_id)
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
    uri, client = _reader(uri)
    with tempfile.TemporaryDirectory(prefix="softmax-lab-") as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except MlflowException as err:
            if err.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            try:
                client.get_run(run_id)  # an unknown run is the better message
            except MlflowException as missing:
                raise _run_error(uri, run_id, missing) from missing
            raise TrackingError(f"run {run_id} has no artifact {path!r} in {uri}") from err
        return Path(local).read_text(encoding="utf-8")


def set_run_tags(uri: str | None, run_id: str, tags: Mapping[str, Any]) -> None:
    """Set (or overwrite) tags of any run by id, e.g. a verdict after the run finished."""
    _, client = _reader(uri)
    for chunk in _chunks([RunTag(k, str(v)) for k, v in tags.items()]):

        def write(chunk: list[RunTag] = chunk) -> None:
            client.log_batch(run_id, tags=chunk, synchronous=True)

        _retry_locked(f"tag run {run_id}", write)


def find_runs_by_config_hash(
    uri: str | None, experiment: str, config_hash: str
) -> list[tuple[str, str]]:
    """``(run_id, status)`` of the runs tagged ``sl.config_hash = config_hash``, newest first.

    Used to resume a sweep: a job whose hash already has a FINISHED run can be skipped. A store
    or experiment that does not exist yet holds no such run, so the list is empty.
    """
    if not re.fullmatch(r"[0-9a-fA-F]+", config_hash):
        raise ValueError(f"config_hash must be a hex digest, got {config_hash!r}")
    uri = _normalize_uri(uri)
    parts = _sqlite_parts(uri)
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
    uri = _normalize_uri(uri)
    parts = _sqlite_parts(uri)
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


def reopen_run(uri: str | None, run_id: str) -> None:
    """Set a finished or killed run back to RUNNING (a resumed sweep's parent)."""
    client = MlflowClient(resolve_uri(uri))
    _retry_locked(f"reopen run {run_id}", lambda: client.update_run(run_id, status="RUNNING"))
