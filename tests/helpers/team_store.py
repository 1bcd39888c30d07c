"""A real team store for tests: ``softmax-lab server start`` (PostgreSQL + ``mlflow server`` with
basic auth) in a directory PostgreSQL's user can reach, on free ports, stopped afterwards."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from helpers.cli import cli
from helpers.servers import free_port


@dataclass(frozen=True)
class TeamStore:
    """A running team store: its directory, ``tracking.uri``, ports and the admin's variables."""

    root: Path
    uri: str
    port: int
    pg_port: int
    admin: dict[str, str]  # MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD

    def env(self, user: str | None = None, password: str | None = None) -> dict[str, str]:
        """Variables for a command run against the store as the admin (or as ``user``)."""
        env = {"MLFLOW_TRACKING_URI": self.uri, **self.admin}
        if user is not None:
            env["MLFLOW_TRACKING_USERNAME"] = user
        if password is not None:
            env["MLFLOW_TRACKING_PASSWORD"] = password
        return env

    def start_args(self) -> list[str]:
        ports = ["--port", str(self.port), "--pg-port", str(self.pg_port)]
        return ["server", "start", "--dir", str(self.root), *ports, "--workers", "1"]


@contextmanager
def signed_in(variables: dict[str, str]) -> Iterator[None]:
    """This process's environment with ``variables`` (e.g. a store's admin credentials) while
    the block runs, as MLflow's client in the test reads them; restored afterwards."""
    old = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def uri_printed(stdout: str) -> str:
    """The ``tracking.uri=…`` line ``server start`` prints."""
    found = re.search(r"^tracking\.uri=(\S+)$", stdout, re.MULTILINE)
    assert found, stdout
    return found.group(1)


def read_env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@contextmanager
def running_team_store() -> Iterator[TeamStore]:
    """Start a team store in a fresh directory under /tmp (pytest's own tmp directories are
    closed to the ``postgres`` user when tests run as root); stop it and remove it after."""
    parent = Path(tempfile.mkdtemp(prefix="softmax-lab-team-", dir="/tmp"))
    os.chmod(parent, 0o711)  # traversable by PostgreSQL's user, not listable
    store = TeamStore(parent / "store", "", free_port(), free_port(), {})
    try:
        started = cli(*store.start_args(), cwd=parent)
        admin = read_env_file(store.root / "admin.env")
        yield TeamStore(store.root, uri_printed(started.stdout), store.port, store.pg_port, admin)
    finally:
        cli("server", "stop", "--dir", str(store.root), cwd=parent, check=False)
        shutil.rmtree(parent, ignore_errors=True)
