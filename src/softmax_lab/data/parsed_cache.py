"""The parsed-array cache: a dataset's four arrays as ``.npy`` under ``<root>/parsed/``.

A loader hands :meth:`ParsedCache.load` a key for its source files (:func:`source_key`) and a
``parse`` callable; the cache returns the arrays stored for that key, or calls ``parse`` and
stores what it returns, so the next load neither decompresses nor parses.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from softmax_lab.data.files import atomic_writer

__all__ = ["ParsedArrays", "ParsedCache", "source_key"]

logger = logging.getLogger(__name__)


class ParsedArrays(NamedTuple):
    """A parsed train/test split.

    Attributes
    ----------
    X_train : ndarray of shape (m, n), float32, C-contiguous
    y_train : ndarray of shape (m,), uint8
    X_test : ndarray of shape (m_test, n), float32, C-contiguous
    y_test : ndarray of shape (m_test,), uint8
    """

    X_train: NDArray[np.float32]
    y_train: NDArray[np.uint8]
    X_test: NDArray[np.float32]
    y_test: NDArray[np.uint8]


def source_key(files: Sequence[Path], params: str) -> str:
    """Identify `files` and `params` without reading the files.

    Returns a JSON list of ``[resolved path, inode, size, mtime_ns, ctime_ns]`` per file, then
    `params`. A file that is replaced (new inode) or written to gets a new key, even when its
    size and modification time are put back (``touch -d``, ``os.utime``): writing a file, or
    setting its times, moves its status-change time ``ctime``, which no user process can set
    back. What it costs: nothing beyond the one ``stat`` per file the key always took; the
    price is a re-parse (and re-hash) after a ``chmod`` or ``mv`` of unchanged files, which
    also move ``ctime``. The arrays' fingerprint itself is always computed from the payload
    bytes when the cache is filled. Raises ``OSError`` if a file cannot be stat'ed.
    """
    stats = [(str(p.resolve()), p.stat()) for p in files]
    return json.dumps(
        [[path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns] for path, st in stats]
        + [params]
    )


class ParsedCache:
    """Parsed arrays as ``.npy`` under ``<root>/parsed/<fingerprint>/``.

    ``parsed/index.json`` maps a source key (:func:`source_key`) to a fingerprint, so a cache
    hit reads no input file. An entry whose files are missing, unreadable, or of the wrong shape
    or dtype is rebuilt, not trusted.
    """

    _INDEX_LIMIT = 256

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "parsed"

    def load(
        self,
        name: str,
        key: str,
        source: str,
        parse: Callable[[], tuple[ParsedArrays, str]],
    ) -> tuple[ParsedArrays, str]:
        """Return the arrays and fingerprint cached under `key`, else `parse` them and store them.

        `name` and `source` only label the log message when `parse` runs.
        """
        index = self._read_index()
        fingerprint = index.get(key)
        arrays = self._read_entry(fingerprint) if isinstance(fingerprint, str) else None
        if arrays is None or fingerprint is None:
            logger.info("parsing %s from %s", name, source)
            arrays, fingerprint = parse()
            self._write(key, fingerprint, arrays, index)
        return arrays, fingerprint

    def _read_index(self) -> dict[str, str]:
        try:
            index = json.loads((self.dir / "index.json").read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            logger.warning(
                "%s: unreadable (%s); starting a new index", self.dir / "index.json", err
            )
            return {}
        return index if isinstance(index, dict) else {}

    def _read_entry(self, fingerprint: str) -> ParsedArrays | None:
        entry = self.dir / fingerprint
        try:
            if not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
                raise ValueError(f"bad fingerprint {fingerprint!r} in index.json")
            meta = json.loads((entry / "meta.json").read_text())
            arrays = []
            for field in ParsedArrays._fields:
                # memory-mapped: a load costs ~1 ms instead of ~0.3 s for 60k images; pages
                # come from the OS page cache as the first epoch touches them (+~15 ms)
                array = np.load(entry / f"{field}.npy", mmap_mode="r", allow_pickle=False)
                want = (meta[field]["shape"], meta[field]["dtype"])
                if [list(array.shape), array.dtype.str] != list(want):
                    raise ValueError(f"{field}.npy holds {array.shape} {array.dtype}, not {want}")
                if not array.flags.c_contiguous:
                    raise ValueError(f"{field}.npy is not C-contiguous")
                arrays.append(array)
        except (OSError, ValueError, KeyError, TypeError, EOFError) as err:
            logger.warning("parsed cache %s is unusable (%s); rebuilding it", entry, err)
            return None
        logger.debug("loaded parsed arrays from %s", entry)
        return ParsedArrays(*arrays)

    def _write(
        self, key: str, fingerprint: str, arrays: ParsedArrays, index: dict[str, str]
    ) -> None:
        entry = self.dir / fingerprint
        meta = {
            f: {"shape": list(a.shape), "dtype": a.dtype.str} for f, a in arrays._asdict().items()
        }
        index.pop(key, None)
        index[key] = fingerprint  # newest last; the oldest are dropped past the limit
        try:
            entry.mkdir(parents=True, exist_ok=True)
            for field, array in arrays._asdict().items():
                with atomic_writer(entry / f"{field}.npy") as f:
                    np.save(f, array)
            # meta.json last: an entry without it is incomplete and gets rebuilt.
            with atomic_writer(entry / "meta.json") as f:
                f.write(json.dumps(meta).encode())
            with atomic_writer(self.dir / "index.json") as f:
                f.write(json.dumps(dict(list(index.items())[-self._INDEX_LIMIT :])).encode())
        except OSError as err:
            logger.warning("could not write the parsed cache in %s (%s)", self.dir, err)
