"""SQLite store files: created from a pre-migrated template, atomically, in WAL mode.

Plain MLflow runs its alembic migrations in every process that finds a SQLite file without
tables, so parallel jobs collide, and each run of them costs about a second. Here a new store is
a copy of an empty, migrated template (built once per machine and MLflow version), assembled
under a temporary name and linked into place; ``enable_wal`` puts a store in WAL journal mode.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
import uuid
from contextlib import closing
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

__all__ = ["FULL", "create_sqlite_store", "enable_wal"]

FULL = "database or disk is full"  # SQLite's SQLITE_FULL, as MLflow and sqlite3 word it

logger = logging.getLogger(__name__)


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


def create_sqlite_store(db: Path, artifact_root: str) -> None:
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
            if template is None or FULL in str(err):  # a full disk is no fault of the template
                raise
            logger.warning("MLflow rejected the store template %s (%s); removing it", template, err)
            template.unlink(missing_ok=True)
            tmp.unlink()
            tmp = tmp.with_name(tmp.name + "2")  # MLflow caches an engine per URI
            _open_sqlalchemy_store(tmp, artifact_root)
        enable_wal(tmp)
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


def enable_wal(db: Path) -> None:
    """Put ``db`` in WAL journal mode (persistent in the file) unless it is already.

    In WAL mode readers (``compare``, the UI) never block the writers and vice versa; writers
    still take turns, which MLflow's 20 s busy timeout and ``retry_locked`` absorb. WAL needs
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
