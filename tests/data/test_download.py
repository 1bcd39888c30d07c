from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from helpers.data import Mirror

from softmax_lab.data.download import RemoteFile, check_file, fetch
from softmax_lab.data.idx import payload_sha256, read_idx, write_idx
from softmax_lab.errors import DownloadError

NAME = "t10k-labels-idx1-ubyte.gz"


def _publish(mirror: Mirror, name: str = NAME) -> RemoteFile:
    """Write an IDX file into the mirror; return it with both checksums."""
    write_idx(mirror.root / name, np.arange(100, dtype=np.uint8) % 10)
    content = (mirror.root / name).read_bytes()
    return RemoteFile(name, hashlib.md5(content).hexdigest(), payload_sha256(mirror.root / name))


def test_fetch_downloads_verified_file(http_mirror: Mirror, tmp_path: Path) -> None:
    remote = _publish(http_mirror)
    path = fetch(remote, tmp_path / "cache", [http_mirror.url])
    assert path == tmp_path / "cache" / NAME
    assert path.read_bytes() == (http_mirror.root / NAME).read_bytes()
    assert http_mirror.requests == [f"/{NAME}"]


def test_fetch_returns_cached_file_without_a_request(http_mirror: Mirror, tmp_path: Path) -> None:
    remote = _publish(http_mirror)
    fetch(remote, tmp_path / "cache", [http_mirror.url])
    fetch(remote, tmp_path / "cache", [http_mirror.url])
    assert len(http_mirror.requests) == 1


def test_fetch_accepts_md5_alone(http_mirror: Mirror, tmp_path: Path) -> None:
    remote = _publish(http_mirror)
    md5_only = RemoteFile(NAME, gz_md5=remote.gz_md5)
    assert fetch(md5_only, tmp_path / "cache", [http_mirror.url]).is_file()


def test_fetch_accepts_regzipped_copy_by_payload_sha256(
    http_mirror: Mirror, tmp_path: Path
) -> None:
    canonical = _publish(http_mirror)
    payload = gzip.decompress((http_mirror.root / NAME).read_bytes())
    regzipped = gzip.compress(payload, compresslevel=1, mtime=12345)
    (http_mirror.root / NAME).write_bytes(regzipped)
    assert hashlib.md5(regzipped).hexdigest() != canonical.gz_md5
    path = fetch(canonical, tmp_path / "cache", [http_mirror.url])
    assert path.read_bytes() == regzipped
    np.testing.assert_array_equal(read_idx(path), np.arange(100, dtype=np.uint8) % 10)


def test_fetch_rejects_checksum_mismatch_and_leaves_nothing(
    http_mirror: Mirror, tmp_path: Path
) -> None:
    remote = _publish(http_mirror)
    wrong = RemoteFile(NAME, gz_md5="0" * 32, payload_sha256="f" * 64)
    dest = tmp_path / "cache"
    msg = (
        rf"{NAME}: could not download a verified copy into {re.escape(str(dest))}; tried:\n"
        rf"  {re.escape(http_mirror.url)}/{NAME}: checksum mismatch: MD5 expected 0{{32}}, "
        rf"got {remote.gz_md5}; payload SHA-256 expected f{{64}}, got {remote.payload_sha256}"
    )
    with pytest.raises(DownloadError, match=msg):
        fetch(wrong, dest, [http_mirror.url])
    assert list(dest.iterdir()) == []


def test_fetch_falls_back_after_http_404(http_mirror: Mirror, tmp_path: Path) -> None:
    remote = _publish(http_mirror)
    missing = http_mirror.url + "/nowhere/"
    assert fetch(remote, tmp_path / "cache", [missing, http_mirror.url]).is_file()
    assert http_mirror.requests == [f"/nowhere/{NAME}", f"/{NAME}"]


def test_fetch_falls_back_after_refused_connection(
    http_mirror: Mirror, dead_url: str, tmp_path: Path
) -> None:
    remote = _publish(http_mirror)
    assert fetch(remote, tmp_path / "cache", [dead_url, http_mirror.url]).is_file()
    assert http_mirror.requests == [f"/{NAME}"]


def test_fetch_lists_every_failed_mirror(
    http_mirror: Mirror, dead_url: str, tmp_path: Path
) -> None:
    remote = _publish(http_mirror)
    missing = http_mirror.url + "/nowhere"
    with pytest.raises(DownloadError) as info:
        fetch(remote, tmp_path / "cache", [missing, dead_url])
    assert info.value.failures[0] == f"{missing}/{NAME}: HTTP 404 File not found"
    assert info.value.failures[1].startswith(f"{dead_url}{NAME}: connection failed (")
    assert "Connection refused" in str(info.value)
    assert list((tmp_path / "cache").iterdir()) == []


def test_fetch_refuses_a_file_without_checksum(http_mirror: Mirror, tmp_path: Path) -> None:
    _publish(http_mirror)
    with pytest.raises(DownloadError, match=f"{NAME}: refusing to download without a checksum"):
        fetch(RemoteFile(NAME), tmp_path / "cache", [http_mirror.url])
    assert http_mirror.requests == []


def test_fetch_replaces_cached_file_that_fails_verification(
    http_mirror: Mirror, tmp_path: Path
) -> None:
    remote = _publish(http_mirror)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / NAME).write_bytes(b"stale")
    fetch(remote, cache, [http_mirror.url])
    assert (cache / NAME).read_bytes() == (http_mirror.root / NAME).read_bytes()
    assert [p.name for p in cache.iterdir()] == [NAME]


def test_check_file_reports_unreadable_payload(tmp_path: Path) -> None:
    (tmp_path / NAME).write_bytes(b"\x1f\x8bgarbage")
    problem = check_file(tmp_path / NAME, RemoteFile(NAME, payload_sha256="0" * 64))
    assert problem is not None
    assert "corrupt gzip stream" in problem
