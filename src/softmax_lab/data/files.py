"""Files written atomically: a reader (or a crash, or a full disk) never leaves a partial file.

``atomic_writer`` streams into a temporary file beside the target and renames it into place;
``write_atomically`` writes bytes already in memory the same way, and its errors name the file.
A full disk (``ENOSPC``) while writing leaves no file at all: neither a truncated target nor
the temporary file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_writer", "write_atomically"]


@contextlib.contextmanager
def atomic_writer(path: str | Path) -> Iterator[IO[bytes]]:
    """Open a temporary file beside `path` for binary writing; move it into place on success.

    The temporary file (``.<name>.<random>.tmp`` in the same directory, its path available as
    the yielded file's ``name``) is renamed onto `path` with :func:`os.replace` when the block
    exits normally, and deleted when it raises, so readers never see a partial file.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as f:
            yield f
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomically(path: str | Path, data: bytes) -> Path:
    """Write `data` as the file `path` (whole, or not at all); return the path.

    Raises
    ------
    OSError
        Naming `path`, e.g. ``[Errno 28] No space left on device: '/out/plots/curves.png'``
        (the OS's own error names no file when a write, rather than the open, fails).
    """
    path = Path(path)
    try:
        with atomic_writer(path) as f:
            f.write(data)
    except OSError as err:
        if err.filename is not None:
            raise
        raise OSError(err.errno, err.strerror, str(path)) from err
    return path
