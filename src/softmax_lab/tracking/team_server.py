"""A team store: ``mlflow server`` with basic authentication over a PostgreSQL cluster of its own.

Everything lives in one directory (``TeamStore.root``)::

    pgdata/            the PostgreSQL cluster (runs, metrics, params; the users in a second
                       database, ``mlflow_auth``)
    artifacts/         artifacts, proxied by the server (clients upload and download through it)
    admin.env          MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD of the admin (0600)
    auth.ini           MLflow's basic-auth configuration (0600)
    flask-secret       the key of the server's CSRF tokens and sessions, one for all its workers
                       (0600)
    pgpass             the database password, for libpq (0600)
    study-storage.url  the database of Optuna studies in the same PostgreSQL, as a URL with its
                       own role's password (0600): hydra.sweeper.storage for searches into
                       this store
    server.json        host and ports of the last start
    mlflow.pid         the PID of the ``mlflow server`` that ``start`` started
    logs/              mlflow.log, postgresql.log

``start`` makes what is missing (cluster, databases, credentials: once, kept afterwards) and
starts what is not running; ``stop`` ends what its PID files name and nothing else. New users
see no experiment but their own (``default_permission = NO_PERMISSIONS``): the admin grants
access per experiment. Each worker caches the password checks it passed for
``AUTH_CACHE_SECONDS`` (a check is a deliberately slow scrypt hash).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from softmax_lab.errors import TrackingError
from softmax_lab.tracking.postgres import SUPERUSER, Cluster, write_private

__all__ = ["ADMIN_USERNAME", "ServerState", "TeamStore"]

ADMIN_USERNAME = "admin"
DATABASE = "mlflow"
AUTH_DATABASE = "mlflow_auth"
# Optuna's studies: a database and login role of their own (Optuna and MLflow both keep an
# alembic_version table, so they cannot share one database)
STUDY_DATABASE = STUDY_ROLE = "optuna"
READY_TIMEOUT = 180.0  # seconds for a first start: MLflow migrates two fresh databases
STOP_TIMEOUT = 30.0
GRACE_SECONDS = 10  # for requests under way when the server is told to stop
# A password check is a scrypt hash (werkzeug's default, made to be slow: ~0.1 s of CPU here,
# ~1 s on a loaded machine), which MLflow's auth app pays on every request unless it caches
# the checks it passed. Cached per worker for this long; the worker that changes a password or
# deletes a user drops its entries at once, the others at the latest after this long.
AUTH_CACHE_SECONDS = 60


@dataclass(frozen=True)
class ServerState:
    """What runs in a team store's directory: the MLflow server's PID and URI, PostgreSQL's
    PID and port (None: not running)."""

    mlflow_pid: int | None
    uri: str | None
    postgres_pid: int | None
    postgres_port: int | None

    @property
    def running(self) -> bool:
        return self.mlflow_pid is not None and self.postgres_pid is not None


class TeamStore:
    """The team store in directory ``root`` (made absolute)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self.cluster = Cluster(
            data=self.root / "pgdata",
            pgpass=self.root / "pgpass",
            log=self.root / "logs" / "postgresql.log",
        )

    # --- where things are -------------------------------------------------------------------

    @property
    def admin_env(self) -> Path:
        return self.root / "admin.env"

    @property
    def auth_ini(self) -> Path:
        return self.root / "auth.ini"

    @property
    def flask_secret(self) -> Path:
        return self.root / "flask-secret"

    @property
    def mlflow_log(self) -> Path:
        return self.root / "logs" / "mlflow.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "mlflow.pid"

    @property
    def study_storage_file(self) -> Path:
        return self.root / "study-storage.url"

    @property
    def settings_file(self) -> Path:
        return self.root / "server.json"

    def admin_credentials(self) -> tuple[str, str]:
        """The admin's user name and password as chosen at the first ``start``."""
        values = dict(
            line.split("=", 1) for line in self.admin_env.read_text().splitlines() if "=" in line
        )
        return values["MLFLOW_TRACKING_USERNAME"], values["MLFLOW_TRACKING_PASSWORD"]

    # --- what runs --------------------------------------------------------------------------

    def mlflow_pid(self) -> int | None:
        """The PID in ``mlflow.pid`` if that process is alive and is this store's ``mlflow
        server`` (its command line names this store's artifact directory); else None."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            return None
        mine = b"mlflow" in cmdline and str(self.root / "artifacts").encode() in cmdline
        return pid if mine else None

    def state(self) -> ServerState:
        pid = self.mlflow_pid()
        uri = None
        if pid is not None:
            settings = json.loads(self.settings_file.read_text())
            uri = f"http://{settings['host']}:{settings['port']}"
        return ServerState(pid, uri, self.cluster.pid(), self.cluster.running_port())

    # --- start and stop ---------------------------------------------------------------------

    def prepare(self) -> None:
        """Make the directory, the cluster and the credentials if missing (once: a second call,
        or a call after ``stop``, keeps them).

        Raises
        ------
        TrackingError
            The ``server`` extra is not installed; no PostgreSQL; its user cannot reach the
            directory; the cluster's password file is gone.
        """
        missing = [m for m in ("psycopg", "flask_wtf") if importlib.util.find_spec(m) is None]
        if missing:
            raise TrackingError(
                f"the team store needs {' and '.join(missing)}: pip install 'softmax-lab[server]'"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "artifacts").mkdir(exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        if not self.cluster.exists():
            self.cluster.init()
        elif not self.cluster.pgpass.is_file():
            raise TrackingError(
                f"{self.cluster.pgpass} is missing: without the database password the cluster "
                f"in {self.cluster.data} cannot be used"
            )
        if not self.admin_env.is_file():
            password = secrets.token_urlsafe(24)  # never MLflow's documented default
            write_private(
                self.admin_env,
                f"MLFLOW_TRACKING_USERNAME={ADMIN_USERNAME}\nMLFLOW_TRACKING_PASSWORD={password}\n",
            )
        if not self.flask_secret.is_file():
            write_private(self.flask_secret, secrets.token_hex(32) + "\n")

    def start_postgres(self, *, host: str, port: int) -> None:
        """Start the cluster on ``host:port`` and create the two databases if missing."""
        self.cluster.start(host=host, port=port)
        for name in (DATABASE, AUTH_DATABASE):
            self.cluster.create_database(name, host=host, port=port)
        # the studies' role keeps its password (the URL file is its only copy); host and port
        # are those of this start
        password = secrets.token_urlsafe(24)
        if self.study_storage_file.is_file():
            password = urlsplit(self.study_storage_file.read_text().strip()).password or password
        self.cluster.create_database(
            STUDY_DATABASE, host=host, port=port, owner=(STUDY_ROLE, password)
        )
        write_private(
            self.study_storage_file,
            f"postgresql+psycopg://{STUDY_ROLE}:{password}@{host}:{port}/{STUDY_DATABASE}\n",
        )

    def start_mlflow(
        self, *, host: str, port: int, pg_host: str, pg_port: int, workers: int
    ) -> str:
        """Start ``mlflow server`` (basic auth, proxied artifacts) over the running cluster,
        detached in a session of its own, its PID in ``mlflow.pid``; wait until it answers.
        Returns its URI.

        Raises
        ------
        TrackingError
            It exited, or did not answer within ``READY_TIMEOUT`` s (then it is stopped); the
            message names its log.
        """
        database = f"postgresql+psycopg://{SUPERUSER}@{pg_host}:{pg_port}"
        _, password = self.admin_credentials()
        write_private(
            self.auth_ini,
            "[mlflow]\n"
            "default_permission = NO_PERMISSIONS\n"
            f"database_uri = {database}/{AUTH_DATABASE}\n"
            f"admin_username = {ADMIN_USERNAME}\n"
            f"admin_password = {password}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}\n",
        )
        env = {
            **os.environ,
            "MLFLOW_AUTH_CONFIG_PATH": str(self.auth_ini),
            "PGPASSFILE": str(self.cluster.pgpass),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": self.flask_secret.read_text().strip(),
            # no server-side job runner (a huey consumer and a queue in /dev/shm)
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            env.pop(name, None)
        argv = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--app-name",
            "basic-auth",
            "--backend-store-uri",
            f"{database}/{DATABASE}",
            "--artifacts-destination",
            str(self.root / "artifacts"),
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            # uvicorn would wait for idle keep-alive connections of clients without end
            "--uvicorn-opts",
            f"--timeout-graceful-shutdown {GRACE_SECONDS}",
        ]
        self.mlflow_log.parent.mkdir(parents=True, exist_ok=True)
        with self.mlflow_log.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.root,
                start_new_session=True,  # outlives this command; stopped as a process group
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        self.settings_file.write_text(
            json.dumps({"host": host, "port": port, "pg_host": pg_host, "pg_port": pg_port})
        )
        uri = f"http://{host}:{port}"
        deadline = time.monotonic() + READY_TIMEOUT
        while not _healthy(uri):
            code = proc.poll()
            if code is not None or time.monotonic() > deadline:
                self.stop_mlflow()
                why = (
                    f"exited with code {code}"
                    if code is not None
                    else f"did not answer within {READY_TIMEOUT:g} s"
                )
                raise TrackingError(f"mlflow server at {uri} {why}; see {self.mlflow_log}")
            time.sleep(0.5)
        return uri

    def stop_mlflow(self) -> bool:
        """End the ``mlflow server`` named by ``mlflow.pid`` and its workers (SIGTERM to its
        process group, SIGKILL after ``STOP_TIMEOUT`` s); whether one was running."""
        pid = self.mlflow_pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        os.killpg(pid, signal.SIGTERM)
        if not _wait_group(pid, STOP_TIMEOUT):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _wait_group(pid, 5.0)
        return True


def _wait_group(pgid: int, timeout: float) -> bool:
    """Wait until no process of group ``pgid`` lives (zombies do not count: their parent, or
    init, collects them); whether that happened within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(ChildProcessError):  # our own child: collect it
            os.waitpid(pgid, os.WNOHANG)
        if not _living_members(pgid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def _living_members(pgid: int) -> list[int]:
    """PIDs of the processes of group ``pgid`` that are not zombies (from ``/proc``)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses
        state, _ppid, pgrp = stat.rpartition(")")[2].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
