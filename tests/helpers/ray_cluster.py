"""A real Ray cluster for tests: one head node on 127.0.0.1 with 2 CPUs and token auth.

``ray start --head --block`` runs as a child of the test process in a session of its own, so
stopping it ends exactly the processes it started (its process group), never another Ray on
the machine (``ray stop`` would end every one). Its token lives in the test's directory
(``RAY_AUTH_TOKEN_PATH``), not in ``~/.ray``; the sweep processes get the same variables.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.servers import clean_env, free_port, stop_group

RAY = str(Path(sys.executable).with_name("ray"))


@dataclass(frozen=True)
class RayCluster:
    """A running head node: its address and the variables a client needs (the token)."""

    address: str
    env: dict[str, str]
    log: Path


@contextmanager
def ray_head(directory: Path, *, home: Path | None = None) -> Iterator[RayCluster]:
    """Start a Ray head node (2 CPUs, no dashboard, token authentication) on 127.0.0.1;
    ``home``: the node's ``$HOME`` (where ``~`` in a ``dataset.path`` points on that node).
    Yields it; stops its process group afterwards."""
    token = directory / "ray-token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    port = free_port()
    # a short temp dir: Ray's unix sockets live under it (paths are limited to 107 bytes)
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    log = directory / "ray-head.log"
    env = {**clean_env(), **auth, "RAY_USAGE_STATS_ENABLED": "0"}
    if home is not None:
        env["HOME"] = str(home)
    with log.open("w") as out:
        head = subprocess.Popen(
            [
                RAY,
                "start",
                "--head",
                "--block",
                f"--port={port}",
                "--node-ip-address=127.0.0.1",
                "--num-cpus=2",
                "--include-dashboard=false",
                f"--temp-dir={temp}",
                "--disable-usage-stats",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: stopped as one, by its id
        )
    try:
        deadline = time.monotonic() + 180
        while "Ray runtime started" not in log.read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start did not come up:\n{log.read_text()}")
            time.sleep(0.5)
        yield RayCluster(f"127.0.0.1:{port}", auth, log)
    finally:
        stop_group(head, timeout=30)
        shutil.rmtree(temp, ignore_errors=True)
