"""The environment a run ran in: version, git commit, NumPy and BLAS, as ``sl.*`` tags."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import numpy as np

from softmax_lab import __version__


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
        # parents[1] is softmax_lab/, whose __init__.py _git_commit checks is tracked
        "sl.git_commit": _git_commit(Path(__file__).resolve().parents[1]),
        "sl.numpy": np.__version__,
        "sl.blas": _blas(),
        "sl.threads": str(_blas_threads()),
    }
