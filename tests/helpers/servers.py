"""Test plumbing shared by the tests that start real processes: ports, health, environment."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    """This process's environment without ``MLFLOW_TRACKING_URI`` (tests name their store)."""
    return {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def wait_until_healthy(
    url: str, server: subprocess.Popen[bytes], log: Callable[[], str], *, timeout: float
) -> None:
    """Poll ``url/health`` until it answers 200; fail with the server's log if it dies or
    ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{url} did not come up:\n{log()}")
        time.sleep(0.5)


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM the server's process group (uvicorn workers, job consumers), SIGKILL stragglers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    while time.monotonic() < deadline:  # its children may outlive it by a few seconds
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    proc.wait()


@contextmanager
def mlflow_server(directory: Path) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 (free port, one worker) over a SQLite store in
    ``directory``, its log in ``directory / "server.log"``; yields its URL, stops its group."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = directory / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{directory}/srv.db",
                "--artifacts-destination",
                str(directory / "srv-artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers form one process group, ended together
        )
        try:
            wait_until_healthy(url, server, log_path.read_text, timeout=60)
            yield url
        finally:
            stop_group(server)
