"""Atomic writes on a real full file system (a small tmpfs): no partial file, errors name it."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.mounts import fill, tmpfs

from softmax_lab.data.files import write_atomically


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "tiny", "1m") as mount:
        fill(mount, 8192)
        yield mount


def test_write_atomically_leaves_nothing_on_a_full_disk_and_names_the_file(
    full_disk: Path,
) -> None:
    target = full_disk / "big.bin"
    with pytest.raises(OSError, match="No space left on device") as caught:
        write_atomically(target, b"x" * 200_000)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(target)
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # no target, no .tmp


def test_write_atomically_keeps_the_old_file_whole_when_the_disk_fills(full_disk: Path) -> None:
    target = full_disk / "kept.txt"
    write_atomically(target, b"old contents\n")
    with pytest.raises(OSError):
        write_atomically(target, b"y" * 200_000)
    assert target.read_bytes() == b"old contents\n"
