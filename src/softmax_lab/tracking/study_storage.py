"""Where an Optuna study keeps its trials: next to the MLflow store the study's runs go to.

A study's trials (their parameters, states, intermediate values) live in Optuna's own database,
beside the MLflow store that records the same trials as runs:

- a SQLite store ``sqlite:///DIR/NAME.db`` puts its studies in ``sqlite:///DIR/NAME.optuna.db``;
- any other store (a tracking server, a team store, PostgreSQL) needs the study database named
  (``hydra.sweeper.storage``): for a team store, ``softmax-lab server start`` prints the URL of
  the database it made for studies, in the same PostgreSQL (``study-storage.url`` in its
  directory).

Processes that run one study take turns to count its trials and ask for new ones
(``asking``), so together they start exactly as many as the study asks for: a file lock beside
a SQLite database, an advisory lock in PostgreSQL.

Optuna's and MLflow's tables cannot share one database (both keep an ``alembic_version``
table). Several processes may open one fresh SQLite study database at once: the first creates
its tables under a file lock, the others wait; and each connection waits up to
``SQLITE_TIMEOUT_SECONDS`` for a writer instead of failing with "database is locked".
"""

from __future__ import annotations

import fcntl
import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from softmax_lab.errors import InputError
from softmax_lab.tracking.store import resolve_uri, sqlite_parts

if TYPE_CHECKING:
    from collections.abc import Iterator

    from optuna.storages import RDBStorage

__all__ = [
    "SQLITE_TIMEOUT_SECONDS",
    "asking",
    "open_study_storage",
    "redact",
    "study_storage_url",
]

SQLITE_TIMEOUT_SECONDS = 60  # how long a connection waits for another process's write


def study_storage_url(tracking_uri: str | None, storage: str | None) -> str:
    """The study database for a sweep recorded at ``tracking_uri``: ``storage`` when given,
    else the SQLite file beside a SQLite store.

    Raises
    ------
    InputError
        For a store that is not a SQLite file when ``storage`` is not given (naming the key).
    """
    if storage:
        if "://" not in storage:
            raise InputError(
                f"hydra.sweeper.storage must be a database URL (sqlite:///FILE, "
                f"postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB), got {storage!r}"
            )
        return storage
    uri = resolve_uri(tracking_uri)
    parts = sqlite_parts(uri)
    if parts is None:
        raise InputError(
            f"hydra.sweeper.storage: the study's trials need a database of their own beside the "
            f"tracking store {redact(uri)!r}, which is not a SQLite file; give one, e.g. the URL "
            "in a team store's study-storage.url (softmax-lab server start prints it)"
        )
    db = parts[0]
    return f"sqlite:///{db.with_name(db.stem + '.optuna.db')}"


def redact(url: str) -> str:
    """``url`` without its password (for tags and messages)."""
    split = urlsplit(url)
    if split.password is None:
        return url
    netloc = split.netloc.replace(f":{split.password}@", ":***@", 1)
    return urlunsplit(split._replace(netloc=netloc))


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def asking(storage: RDBStorage, url: str, study_name: str) -> Iterator[None]:
    """Hold the study's lock for counting and asking: one process at a time. Databases other
    than SQLite and PostgreSQL take no lock (then two processes may overshoot ``n_trials``
    by a batch)."""
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        with _file_lock(db.with_name(f"{db.name}.ask.lock")):
            yield
        return
    if not url.startswith("postgresql"):
        yield
        return
    from sqlalchemy import text

    key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
    with storage.engine.connect() as con:
        con.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            con.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@contextmanager
def _creation_lock(url: str) -> Iterator[None]:
    """Hold a file lock beside a SQLite study database while its tables may be created (two
    processes creating one fresh file race in the schema's creation); nothing for others."""
    if not url.startswith("sqlite:///"):
        yield
        return
    db = Path(url.removeprefix("sqlite:///"))
    with _file_lock(db.with_name(db.name + ".lock")):
        yield


def open_study_storage(url: str) -> RDBStorage:
    """Optuna's storage at ``url``, its tables created if missing.

    Raises
    ------
    InputError
        When the database cannot be opened (the URL, redacted, and the cause).
    """
    import optuna

    kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_SECONDS}} if "sqlite" in url else {}
    try:
        with _creation_lock(url):
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except Exception as err:  # sqlalchemy's and the drivers' errors, which name no key
        raise InputError(
            f"hydra.sweeper.storage: cannot open the study database {redact(url)}: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from err
