"""Running the ``softmax-lab`` command in tests: a real process, a real SQLite store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers.servers import clean_env

METRICS = ("train/loss", "train/error", "test/loss", "test/error")


def run_command(
    argv: list[str], *, cwd: Path, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in ``cwd`` with exactly ``env``; with ``check``, a non-zero exit fails the
    test showing both output streams."""
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def cli(
    *args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m softmax_lab ARGS`` in ``cwd`` with no tracking URI in the environment
    (plus ``env``)."""
    argv = [sys.executable, "-m", "softmax_lab", *args]
    return run_command(argv, cwd=cwd, env={**clean_env(), **(env or {})}, check=check)


def store_uri(tmp_path: Path) -> str:
    """A SQLite store in the test's directory."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def common_overrides(tmp_path: Path, digits_dir: Path, experiment: str = "t") -> list[str]:
    """Overrides that keep a run's data, store and output dirs inside the test's directory."""
    return [
        "dataset=idx",
        f"dataset.path={digits_dir}",
        f"tracking.uri={store_uri(tmp_path)}",
        f"tracking.experiment={experiment}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
