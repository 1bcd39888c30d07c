"""Small real file systems for tests: a tmpfs mounted under the test's directory (needs root,
as CI runs), filled to leave a given number of bytes free."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(mount: Path, size: str = "2m") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``mount`` (made if missing); unmount it afterwards."""
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root (CI runs as root)")
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def free_bytes(directory: Path) -> int:
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def fill(directory: Path, leave: int) -> None:
    """Write ``directory/filler`` so that about ``leave`` bytes stay free (whole 4 KiB pages)."""
    size = max(free_bytes(directory) - leave, 0)
    with open(directory / "filler", "wb") as f:
        f.write(b"\0" * size)
