"""Where runs are stored: tracking URIs, whether a store can be used (``check_usable``: before
any work, in seconds), SQLite stores made ready for parallel jobs, experiments.

SQLite stores get three things plain MLflow does not give them (see ``prepare_store``):
creation from a pre-migrated template (fast, and atomic, so parallel jobs never race through the
schema migrations: ``sqlite_file``), WAL journal mode (readers and the writer stop blocking each
other), and a retry with backoff around writes that still meet ``database is locked``. Importing
this module makes every SQLite connection of the process use ``synchronous=NORMAL`` (see
``_relax_sqlite_sync``).
"""

from __future__ import annotations

import errno
import logging
import os
import random
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from softmax_lab.errors import StoreFullError, TrackingError
from softmax_lab.tracking.reachable import check_server
from softmax_lab.tracking.sqlite_file import FULL, create_sqlite_store, enable_wal

logger = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///outputs/mlflow.db"
LOCK_RETRIES = 6  # each attempt already waits out MLflow's 20 s SQLite busy timeout
# Below this much free space on its file system a SQLite store is refused before any work: one
# job's writes (params, metrics, θ, three pictures) take about 100 KB, and SQLite's WAL journal
# grows by 4 KB pages on every write until a checkpoint.
MIN_FREE_BYTES = 256 * 1024

_T = TypeVar("_T")


def sqlite_parts(uri: str) -> tuple[Path, str] | None:
    """``(database path, "?query" or "")`` of a file-backed SQLite URI; None for anything else."""
    if not uri.startswith("sqlite:///"):  # "sqlite://" alone is an in-memory database
        return None
    path, sep, query = uri.removeprefix("sqlite:///").partition("?")
    if path in ("", ":memory:"):
        return None
    return Path(path), sep + query


def normalize_uri(uri: str | None) -> str:
    """Apply the precedence and make a SQLite path absolute; touch nothing on disk."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    parts = sqlite_parts(uri)
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
    uri = normalize_uri(uri)
    parts = sqlite_parts(uri)
    if parts is not None:
        try:
            parts[0].parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise TrackingError(
                f"tracking URI {uri!r}: cannot create the directory {parts[0].parent} for its "
                f"database: {err.strerror or err}"
            ) from err
    return uri


def artifact_root_for(uri: str) -> str | None:
    """Where a SQLite store keeps artifacts: ``<directory of the db>/mlartifacts`` as a file URI.

    Returns None for servers and other databases: their artifact root is theirs to decide.
    """
    parts = sqlite_parts(normalize_uri(uri))
    if parts is None:
        return None
    return (parts[0].parent / "mlartifacts").as_uri()


def _relax_sqlite_sync() -> None:
    """Have every SQLite connection this process opens commit without an fsync of its own.

    In WAL mode ``synchronous=NORMAL`` still never corrupts the database and loses nothing when
    the process dies; only a power failure can drop the last commits. It halves the cost of a
    small MLflow write (measured: create_run 4.5 → 3.5 ms, set_terminated 4.2 → 1.7 ms).
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    event.listen(Engine, "connect", on_connect)


_relax_sqlite_sync()  # before this process opens any store

# MLflow logs every database error, with its traceback, before raising it; the callers here
# raise it as one error of ours (a full store: dozens of tracebacks in a sweep).
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


# Threads of one process (a fused sweep's groups) take turns here rather than in SQLite, whose
# busy handler sleeps in steps of 1-100 ms while another connection holds the write lock.
_WRITES = threading.Lock()


def retry_locked(what: str, write: Callable[[], _T]) -> _T:
    """Run ``write`` (one thread of this process at a time), retrying with exponential backoff
    while SQLite says the database is locked (by another process).

    Raises
    ------
    StoreFullError
        At once, when the store's database or disk is full (``what: database or disk is
        full``): retrying cannot help.
    TrackingError
        At once, when a server refuses the user this write (HTTP 403: MLflow's basic-auth app
        and a user with no EDIT permission on the experiment).
    """
    delay = 0.1
    for attempt in range(1, LOCK_RETRIES + 1):
        try:
            with _WRITES:
                return write()
        except MlflowException as err:
            if FULL in str(err):
                raise StoreFullError(f"{what}: {FULL}") from err
            if err.error_code == "PERMISSION_DENIED":
                user = os.environ.get("MLFLOW_TRACKING_USERNAME")
                raise TrackingError(
                    f"{what}: user {user!r} may not write there (the server denied it); ask the "
                    "store's admin to grant EDIT on the experiment"
                ) from err
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


# database servers MLflow stores runs in (SQLAlchemy URIs; a driver may follow a '+')
DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")
_HOW = "use sqlite:///PATH.db, an MLflow server http(s)://HOST:PORT, or postgresql://…"


def check_usable(uri: str, *, write: bool) -> None:
    """Raise ``TrackingError`` unless ``uri`` (normalised) names a store this process can read,
    and with ``write`` also write (a new SQLite store: create).

    Raises
    ------
    TrackingError
        A URI with another scheme, or no scheme (a plain path); an in-memory SQLite store; a
        directory, or a file that is not a SQLite database, where the database should be; a
        store or directory on a read-only file system or without permission to write; no
        MLflow server answering at an ``http(s)://`` URI.
    """
    # Once per store and process: every read of a store passes here (a sweep's report reads
    # each run's history), and a server's check is an HTTP request. Only successes are kept.
    if (uri, write) in _USABLE or (uri, True) in _USABLE:
        return
    _check_usable(uri, write=write)
    _USABLE.add((uri, write))


_USABLE: set[tuple[str, bool]] = set()  # (URI, checked for writing) found usable


def _check_usable(uri: str, *, write: bool) -> None:
    scheme, sep, _ = uri.partition("://")
    if not sep:
        hint = f" (for a SQLite file: sqlite:///{Path(uri).expanduser().absolute()})"
        raise TrackingError(f"tracking URI {uri!r} has no scheme{hint}; {_HOW}")
    if scheme in ("http", "https"):
        check_server(uri)
        return
    if scheme.partition("+")[0] in DATABASE_SCHEMES:
        return  # a database server: MLflow's connection reports it
    if scheme != "sqlite":
        raise TrackingError(
            f"tracking URI {uri!r}: softmax-lab cannot store runs in {scheme}://; {_HOW}"
        )
    parts = sqlite_parts(uri)
    if parts is None:
        raise TrackingError(
            f"tracking URI {uri!r} is an in-memory SQLite database, lost when the process "
            "ends; give a file: sqlite:///PATH.db"
        )
    _check_sqlite_file(uri, parts[0], write=write)


def _why_not_writable(path: Path) -> str:
    """Why ``os.access(path, W_OK)`` said no, in the words of the OS."""
    if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
        return os.strerror(errno.EROFS)  # "Read-only file system"
    return os.strerror(errno.EACCES)  # "Permission denied"


def _check_sqlite_file(uri: str, db: Path, *, write: bool) -> None:
    if db.is_dir():
        raise TrackingError(
            f"tracking URI {uri!r}: {db} is a directory, not a SQLite database file; "
            f"name a file, e.g. sqlite:///{db / 'mlflow.db'}"
        )
    if db.exists():
        # Through SQLite, never a file descriptor of our own: closing any descriptor of the
        # database file drops every POSIX lock this process holds on it, including those of
        # the store's open connections (SQLite's own VFS shares them safely). A garbage file
        # fails on its header: "file is not a database".
        if write and not os.access(db, os.W_OK):
            raise TrackingError(f"tracking URI {uri!r}: cannot write {db}: {_why_not_writable(db)}")
        try:
            with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
                con.execute("PRAGMA schema_version").fetchone()
        except sqlite3.OperationalError as err:  # e.g. unable to open it
            raise TrackingError(f"tracking URI {uri!r}: cannot read {db}: {err}") from err
        except sqlite3.DatabaseError as err:
            raise TrackingError(
                f"tracking URI {uri!r}: {db} is not a SQLite database ({err}); point "
                "tracking.uri at another file, or move this one away"
            ) from err
    if write:  # the database's directory holds its journal files (WAL) and new stores
        try:
            with tempfile.TemporaryFile(dir=db.parent, prefix=".softmax-lab-check-"):
                pass
        except FileNotFoundError:
            return  # created by resolve_uri when the store is prepared
        except OSError as err:
            raise TrackingError(
                f"tracking URI {uri!r}: cannot write in {db.parent}: {err.strerror}"
            ) from err


def check_free_space(uri: str, db: Path) -> None:
    """Raise ``StoreFullError`` if the file system of the SQLite store ``db`` has less than
    ``MIN_FREE_BYTES`` free (for this user): too little to record even one job."""
    stat = os.statvfs(db.parent)
    free = stat.f_bavail * stat.f_frsize
    if free < MIN_FREE_BYTES:
        raise StoreFullError(
            f"tracking URI {uri!r}: only {free // 1024} KiB free on the file system of "
            f"{db.parent} (a store needs at least {MIN_FREE_BYTES // 1024} KiB to record a "
            "job); free some space or point tracking.uri elsewhere"
        )


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
        If ``experiment`` exists but is deleted; if the store cannot be used or written
        (``check_usable``), or created.
    StoreFullError
        If the store's file system has less than ``MIN_FREE_BYTES`` free, or its database
        is full.
    """
    uri = resolve_uri(uri)
    check_usable(uri, write=True)
    artifact_root = artifact_root_for(uri)
    parts = sqlite_parts(uri)
    if parts is not None and artifact_root is not None:
        db = parts[0]
        if db.exists():
            enable_wal(db)
        else:
            try:
                create_sqlite_store(db, artifact_root)
            except OSError as err:  # e.g. no space left on device for the new store
                kind = StoreFullError if err.errno == errno.ENOSPC else TrackingError
                raise kind(
                    f"tracking URI {uri!r}: cannot create the store in {db.parent}: "
                    f"{err.strerror or err}"
                ) from err
            except MlflowException as err:
                if FULL not in str(err):
                    raise
                raise StoreFullError(
                    f"tracking URI {uri!r}: cannot create the store in {db.parent}: {FULL}"
                ) from err
        check_free_space(uri, db)
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        try:
            return retry_locked(
                f"create experiment {experiment!r}",
                lambda: client.create_experiment(experiment, artifact_location=artifact_root),
            )
        except StoreFullError as err:
            raise StoreFullError(f"tracking URI {uri!r}: the store is full ({err})") from err
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
