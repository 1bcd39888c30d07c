"""Read and write the IDX array format of MNIST, raw or gzipped, with a payload digest.

An IDX file is a 4-byte magic ``00 00 TT NN`` (``TT`` the type code, ``NN`` the number of
dimensions), ``NN`` big-endian uint32 dimensions, then the values in C order, big-endian.
Compression is detected from the content (gzip magic ``1f 8b``), never from the file name.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import math
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
from numpy.typing import DTypeLike, NDArray

from softmax_lab.data.files import atomic_writer
from softmax_lab.errors import IdxFormatError

__all__ = [
    "open_decompressed",
    "payload_sha256",
    "read_idx",
    "read_idx_with_digest",
    "write_idx",
]

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
# IDX type code -> big-endian dtype of the stored values.
_CODE_TO_DTYPE: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_KIND_TO_CODE: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items()
}
_SUPPORTED = ", ".join(f"0x{c:02X} ({d.newbyteorder('=').name})" for c, d in _CODE_TO_DTYPE.items())


@contextlib.contextmanager
def open_decompressed(path: str | Path) -> Iterator[IO[bytes]]:
    """Open `path` for reading its decompressed bytes: gunzipped if it starts with ``1f 8b``.

    Raises
    ------
    IdxFormatError
        If the file is empty, or (while the block reads) the gzip stream is corrupt or truncated.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        head = raw.read(2)
        if not head:
            raise IdxFormatError(f"{path}: file is empty (0 bytes)")
        raw.seek(0)
        if head != GZIP_MAGIC:
            yield raw
            return
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield cast(IO[bytes], gz)
        except (OSError, EOFError, zlib.error) as err:
            raise IdxFormatError(
                f"{path}: corrupt gzip stream ({err}); delete the file and download it again"
            ) from err


def _read_exact(f: IO[bytes], n: int, update: Callable[[bytes], object]) -> bytearray:
    """Read up to `n` bytes in chunks, passing each to `update` (e.g. a hash's update).

    Chunked so that a corrupt header claiming a huge size fails on the short read, not on
    allocating that size up front.
    """
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            break
        update(chunk)
        buf += chunk
    return buf


def read_idx_with_digest(
    path: str | Path, *, expect_ndim: int | None = None, expect_dtype: DTypeLike | None = None
) -> tuple[NDArray[Any], str]:
    """Read an IDX file and the SHA-256 of its decompressed bytes, in one pass.

    Parameters
    ----------
    path : str or Path
        IDX file, gzipped or raw (detected from the content).
    expect_ndim : int, optional
        Required number of dimensions, e.g. 3 for images, 1 for labels.
    expect_dtype : dtype-like, optional
        Required element type, e.g. ``np.uint8``.

    Returns
    -------
    array : ndarray of the shape and type in the header, native byte order
    digest : str
        Hex SHA-256 of the whole decompressed file (header and payload).

    Raises
    ------
    IdxFormatError
        Empty file, corrupt gzip, bad magic, unknown type code, truncated header or payload,
        trailing bytes, or a dimension count / type other than the expected one.
    FileNotFoundError
        If `path` does not exist.
    """
    path = Path(path)
    digest = hashlib.sha256()
    with open_decompressed(path) as f:
        magic = _read_exact(f, 4, digest.update)
        if len(magic) < 4 or magic[:2] != b"\x00\x00" or magic[2] not in _CODE_TO_DTYPE:
            want = _magic_hex(expect_dtype, expect_ndim)
            got = "0x" + magic.hex() if magic else "nothing"
            hint = ""
            if magic[:2] == GZIP_MAGIC:
                hint = " (is it gzipped twice?)"
            elif len(magic) == 4 and magic[:2] == b"\x00\x00":
                hint = f" (unknown type code 0x{magic[2]:02X}; IDX types are {_SUPPORTED})"
            raise IdxFormatError(f"{path}: expected IDX magic {want}, got {got}{hint}")
        code, ndim = magic[2], magic[3]
        dtype = _CODE_TO_DTYPE[code]
        native = dtype.newbyteorder("=")
        _check_expected(path, code, ndim, native, expect_dtype, expect_ndim)
        dims_raw = _read_exact(f, 4 * ndim, digest.update)
        if len(dims_raw) < 4 * ndim:
            raise IdxFormatError(
                f"{path}: truncated IDX header: {ndim} dimensions need {4 + 4 * ndim} bytes, "
                f"got {4 + len(dims_raw)}"
            )
        shape = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
        nbytes = math.prod(shape) * dtype.itemsize
        payload = _read_exact(f, nbytes, digest.update)
        what = f"shape {shape} of {native.name} = {nbytes} bytes"
        if len(payload) < nbytes:
            raise IdxFormatError(
                f"{path}: truncated IDX payload: header says {what}, got {len(payload)} bytes; "
                "delete the file and download it again"
            )
        extra = 0
        while chunk := f.read(_CHUNK):
            extra += len(chunk)
        if extra:
            raise IdxFormatError(
                f"{path}: {extra} unexpected bytes after the IDX payload (header says {what}, "
                f"file holds {nbytes + extra} payload bytes)"
            )
    array = np.frombuffer(payload, dtype=dtype).reshape(shape).astype(native, copy=False)
    return array, digest.hexdigest()


def read_idx(
    path: str | Path, *, expect_ndim: int | None = None, expect_dtype: DTypeLike | None = None
) -> NDArray[Any]:
    """Read an IDX file (gzipped or raw); see :func:`read_idx_with_digest` for the checks.

    Returns
    -------
    ndarray of the shape and type given in the header, native byte order, writable
    """
    return read_idx_with_digest(path, expect_ndim=expect_ndim, expect_dtype=expect_dtype)[0]


def payload_sha256(path: str | Path) -> str:
    """Return the hex SHA-256 of the decompressed content of `path`, streamed in chunks.

    This identifies the data whatever its packing: a re-gzipped copy has the same value.
    """
    digest = hashlib.sha256()
    with open_decompressed(path) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_idx(path: str | Path, array: NDArray[Any], *, compress: bool | None = None) -> None:
    """Write `array` as an IDX file, atomically.

    Parameters
    ----------
    path : str or Path
        Destination; its directory must exist.
    array : ndarray of any shape (at most 255 dimensions, each < 2**32)
        uint8, int8, int16, int32, float32 or float64.
    compress : bool, optional
        Gzip the file; by default, when `path` ends with ``.gz``. The gzip header holds no
        name and no time, so equal arrays give equal files.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _KIND_TO_CODE.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise IdxFormatError(
            f"{path}: cannot write dtype {array.dtype} as IDX; expected one of {_SUPPORTED}; "
            "convert with array.astype(...)"
        )
    if array.ndim > 255 or any(d >= 2**32 for d in array.shape):
        raise IdxFormatError(
            f"{path}: IDX holds at most 255 dimensions of < 2**32 each, got shape {array.shape}"
        )
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()
    if compress is None:
        compress = path.name.endswith(".gz")
    with atomic_writer(path) as f:
        if compress:
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
                gz.write(header)
                gz.write(payload)
        else:
            f.write(header)
            f.write(payload)
    logger.debug("wrote %s: shape %s %s", path, array.shape, array.dtype)


def _magic_hex(expect_dtype: DTypeLike | None, expect_ndim: int | None) -> str:
    """The expected magic as hex, with ``TT``/``NN`` where the type or ndim is not known."""
    code = _KIND_TO_CODE.get(_kind(expect_dtype)) if expect_dtype is not None else None
    tt = f"{code:02x}" if code is not None else "TT"
    nn = f"{expect_ndim:02x}" if expect_ndim is not None else "NN"
    legend = "" if code is not None and expect_ndim is not None else " (TT type code, NN ndim)"
    return f"0x0000{tt}{nn}{legend}"


def _kind(dtype: DTypeLike) -> tuple[str, int]:
    dt = np.dtype(dtype)
    return dt.kind, dt.itemsize


def _check_expected(
    path: Path,
    code: int,
    ndim: int,
    native: np.dtype[Any],
    expect_dtype: DTypeLike | None,
    expect_ndim: int | None,
) -> None:
    got = f"magic 0x0000{code:02x}{ndim:02x}"
    if expect_ndim is not None and ndim != expect_ndim:
        raise IdxFormatError(
            f"{path}: expected a {expect_ndim}-D IDX array, got {ndim}-D ({got}); "
            "check that images and labels files are not swapped"
        )
    if expect_dtype is not None and native != np.dtype(expect_dtype):
        raise IdxFormatError(
            f"{path}: expected IDX values of type {np.dtype(expect_dtype).name}, "
            f"got {native.name} ({got})"
        )
