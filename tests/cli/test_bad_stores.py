"""Stores that cannot be used: every subcommand says so in one line and exits 2, before any work.

Each case is a real file, directory, read-only file system (a tmpfs mounted read-only by the
test: CI runs as root) or URI. MLflow's own client would retry a garbage ``.db`` for ~100 s, an
http URL with nothing listening for minutes, and fail a read-only store only at its first write,
after the training; the subprocess timeout catches such waits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.cli import cli
from helpers.mounts import tmpfs
from helpers.servers import free_port

from softmax_lab.tracking.store import prepare_store

Case = Callable[[Path], tuple[str, str]]  # tmp dir -> (tracking URI, what the line must name)


def garbage(tmp: Path) -> tuple[str, str]:
    db = tmp / "g.db"
    db.write_bytes(os.urandom(8192))
    return f"sqlite:///{db}", "is not a SQLite database"


def text(tmp: Path) -> tuple[str, str]:
    db = tmp / "t.db"
    db.write_text("these are my notes, not a database\n")
    return f"sqlite:///{db}", "is not a SQLite database"


def directory(tmp: Path) -> tuple[str, str]:
    (tmp / "d.db").mkdir()
    return f"sqlite:///{tmp / 'd.db'}", "is a directory, not a SQLite database file"


def ftp(tmp: Path) -> tuple[str, str]:
    return "ftp://127.0.0.1/runs", "cannot store runs in ftp://"


def no_scheme(tmp: Path) -> tuple[str, str]:
    return "foo:bar", "has no scheme"


def plain_path(tmp: Path) -> tuple[str, str]:
    return str(tmp / "mlflow.db"), f"(for a SQLite file: sqlite:///{tmp / 'mlflow.db'})"


def dead_server(tmp: Path) -> tuple[str, str]:
    return f"http://127.0.0.1:{free_port()}", "no MLflow server answers"


CASES = [garbage, text, directory, ftp, no_scheme, plain_path, dead_server]


def commands(tmp: Path, uri: str, digits_dir: Path) -> dict[str, list[str]]:
    data = ["dataset=idx", f"dataset.path={digits_dir}", f"tracking.uri={uri}"]
    return {
        "train": ["train", *data, "optim.epochs=1", f"hydra.run.dir={tmp / 'run'}"],
        "train -m": ["train", "-m", *data, "optim.lr=0.1,0.2", f"hydra.sweep.dir={tmp / 'sw'}"],
        "compare": ["compare", "--tracking-uri", uri],
        "rerun": ["rerun", "0123abcd", "--tracking-uri", uri],
        "ui": ["ui", "--tracking-uri", uri, "--port", str(free_port())],
    }


def assert_one_line_exit_2(proc: subprocess.CompletedProcess[str], named: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert named in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "train -m", "compare", "rerun", "ui"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_a_store_that_cannot_be_used_is_one_line_and_exit_2(
    tmp_path: Path, digits_dir: Path, case: Case, command: str
) -> None:
    uri, named = case(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    started = time.monotonic()
    proc = cli(*commands(tmp_path, uri, digits_dir)[command], cwd=tmp_path, check=False)
    elapsed = time.monotonic() - started
    assert_one_line_exit_2(proc, named)
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing may be made"
    # no retries: ~2-3 s on an idle machine (the interpreter, Hydra, one check), where MLflow's
    # own client would retry for minutes; the margin is for a shared, loaded machine
    assert elapsed < 30, f"{command} took {elapsed:.1f} s to reject {uri}"


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A directory on a tmpfs holding an existing store, remounted read-only."""
    with tmpfs(tmp_path / "ro", "8m") as mount:
        # in another process: this one would keep the store open, and a remount then fails
        create = f"from {prepare_store.__module__} import prepare_store as p; p({{!r}}, 't')"
        uri = f"sqlite:///{mount / 'old.db'}"
        subprocess.run([sys.executable, "-c", create.format(uri)], check=True, timeout=120)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "train -m", "ui"])
@pytest.mark.parametrize("store", ["old.db", "new.db"])
def test_a_store_on_a_read_only_file_system_is_one_line_and_exit_2(
    tmp_path: Path, digits_dir: Path, read_only: Path, store: str, command: str
) -> None:
    uri = f"sqlite:///{read_only / store}"
    proc = cli(*commands(tmp_path, uri, digits_dir)[command], cwd=tmp_path, check=False)
    assert_one_line_exit_2(proc, "Read-only file system")
