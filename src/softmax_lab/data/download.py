"""Fetch a file from a list of mirrors into a cache directory, verified by checksum.

Standard library only (``urllib``). A download is streamed into a temporary file beside its
destination, verified, and renamed into place; a file that fails verification is deleted, so
nothing corrupt stays in the cache.

A file is accepted when the MD5 of its bytes matches, or when the SHA-256 of its decompressed
content (the IDX payload) matches: a re-gzipped copy differs in its ``.gz`` bytes but holds the
same payload.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from softmax_lab.data.files import atomic_writer
from softmax_lab.data.idx import payload_sha256
from softmax_lab.errors import DownloadError, IdxFormatError

__all__ = ["RemoteFile", "check_file", "fetch"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """A file to fetch and the checksums that identify it.

    Parameters
    ----------
    name : str
        File name, both on the mirrors and in the destination directory.
    gz_md5 : str, optional
        Hex MD5 of the file's bytes as published (the canonical ``.gz``).
    payload_sha256 : str, optional
        Hex SHA-256 of the decompressed content (see :func:`softmax_lab.data.idx.payload_sha256`).
    size : int, optional
        Size in bytes of the canonical file; used for progress messages only, since a
        re-gzipped copy has another size.
    """

    name: str
    gz_md5: str | None = None
    payload_sha256: str | None = None
    size: int | None = None


def check_file(path: Path, remote: RemoteFile, *, md5: str | None = None) -> str | None:
    """Check `path` against the checksums of `remote`.

    Parameters
    ----------
    path : Path
        File to check.
    remote : RemoteFile
        Expected checksums; at least one must be known.
    md5 : str, optional
        MD5 of the file if already computed (as :func:`fetch` does while streaming).

    Returns
    -------
    str or None
        None when the file matches, else what did not match (expected vs got).
    """
    problems = []
    if remote.gz_md5 is not None:
        got_md5 = md5 if md5 is not None else _md5_of(path)
        if got_md5 == remote.gz_md5:
            return None
        problems.append(f"MD5 expected {remote.gz_md5}, got {got_md5}")
    if remote.payload_sha256 is not None:
        try:
            got_sha = payload_sha256(path)
        except IdxFormatError as err:
            return "; ".join([*problems, f"unreadable payload ({err})"])
        if got_sha == remote.payload_sha256:
            return None
        problems.append(f"payload SHA-256 expected {remote.payload_sha256}, got {got_sha}")
    return "checksum mismatch: " + "; ".join(problems)


def fetch(
    remote: RemoteFile, dest_dir: Path, mirrors: Sequence[str], *, timeout: float = 30
) -> Path:
    """Return ``dest_dir / remote.name``, downloading it from the first mirror that works.

    Parameters
    ----------
    remote : RemoteFile
        What to fetch; it must carry a gz MD5 or a payload SHA-256.
    dest_dir : Path
        Cache directory; created if missing.
    mirrors : sequence of str
        Base URLs, tried in order; the file's URL is ``mirror.rstrip('/') + '/' + name``.
    timeout : float
        Seconds to wait for each connection or read.

    Returns
    -------
    Path
        The verified file. An existing file that verifies is returned without a download;
        an existing file that does not is replaced by a download.

    Raises
    ------
    DownloadError
        If no checksum is known, or every mirror failed (the message lists each mirror and
        what went wrong: HTTP error, connection error, checksum mismatch).
    """
    if remote.gz_md5 is None and remote.payload_sha256 is None:
        raise DownloadError(
            f"{remote.name}: refusing to download without a checksum; "
            "give RemoteFile a gz_md5 or a payload_sha256"
        )
    dest_dir = Path(dest_dir)
    dest = dest_dir / remote.name
    if dest.is_file():
        problem = check_file(dest, remote)
        if problem is None:
            logger.debug("%s: cached copy verified", dest)
            return dest
        logger.warning("%s: cached copy fails verification (%s); downloading again", dest, problem)
    dest_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + remote.name
        try:
            _download(url, dest, remote, timeout=timeout)
        except (OSError, http.client.HTTPException, _ChecksumMismatchError) as err:
            if isinstance(err, urllib.error.HTTPError):
                err.close()  # it holds the open response
            failures.append(f"{url}: {_describe(err)}")
            logger.info("%s", failures[-1])
            continue
        return dest
    tried = "\n".join(f"  {line}" for line in failures) or "  (no mirrors given)"
    raise DownloadError(
        f"{remote.name}: could not download a verified copy into {dest_dir}; tried:\n{tried}\n"
        f"Fix: check the network, or put {remote.name} in {dest_dir} yourself",
        failures,
    )


class _ChecksumMismatchError(DownloadError):
    """A downloaded file did not verify (internal: reported per mirror by :func:`fetch`)."""


def _download(url: str, dest: Path, remote: RemoteFile, *, timeout: float) -> None:
    """Stream `url` into a temporary file, verify it, and rename it onto `dest`."""
    logger.info("downloading %s", url)
    md5 = hashlib.md5(usedforsecurity=False)
    received = 0
    with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_writer(dest) as f:
        total = remote.size or int(resp.headers.get("Content-Length") or 0)
        while chunk := resp.read(_CHUNK):
            md5.update(chunk)
            f.write(chunk)
            received += len(chunk)
            if total:
                logger.debug("%s: %d / %d bytes", remote.name, received, total)
        f.flush()
        problem = check_file(Path(f.name), remote, md5=md5.hexdigest())
        if problem is not None:
            raise _ChecksumMismatchError(problem)  # deletes the temporary file
    logger.info("saved %s (%d bytes)", dest, received)


def _md5_of(path: Path) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            md5.update(chunk)
    return md5.hexdigest()


def _describe(err: BaseException) -> str:
    """A one-line reason for a failed mirror."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"connection failed ({err.reason})"
    if isinstance(err, _ChecksumMismatchError):
        return str(err)
    return f"{type(err).__name__}: {err}"
