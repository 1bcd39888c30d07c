from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from softmax_lab.data.idx import payload_sha256, read_idx, read_idx_with_digest, write_idx
from softmax_lab.errors import IdxFormatError


def _images(m: int = 5) -> np.ndarray:
    return np.arange(m * 16, dtype=np.uint8).reshape(m, 4, 4)


def _raw_file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _idx_bytes(array: np.ndarray, tmp_path: Path) -> bytes:
    write_idx(tmp_path / "scratch", array, compress=False)
    return (tmp_path / "scratch").read_bytes()


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_write_then_read_round_trips(tmp_path: Path, dtype: type, compress: bool) -> None:
    array = (np.arange(60).reshape(3, 4, 5) - 20).astype(dtype)
    path = tmp_path / "a.idx"
    write_idx(path, array, compress=compress)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype)
    assert back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_write_idx_gzips_when_name_ends_with_gz(tmp_path: Path) -> None:
    write_idx(tmp_path / "a.gz", _images())
    write_idx(tmp_path / "a", _images())
    assert (tmp_path / "a.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "a").read_bytes()[:4] == b"\x00\x00\x08\x03"


def test_write_idx_writes_the_canonical_header(tmp_path: Path) -> None:
    content = _idx_bytes(np.zeros((2, 3), dtype=np.int16), tmp_path)
    assert content[:12] == bytes([0, 0, 0x0B, 2, 0, 0, 0, 2, 0, 0, 0, 3])
    assert len(content) == 12 + 2 * 3 * 2


def test_write_idx_is_deterministic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    write_idx(tmp_path / "a.gz", _images())
    first = (tmp_path / "a.gz").read_bytes()
    write_idx(tmp_path / "a.gz", _images())
    assert (tmp_path / "a.gz").read_bytes() == first
    assert [p.name for p in tmp_path.iterdir()] == ["a.gz"]


def test_read_idx_detects_gzip_by_content_not_name(tmp_path: Path) -> None:
    write_idx(tmp_path / "gzipped.raw", _images(), compress=True)
    write_idx(tmp_path / "plain.gz", _images(), compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "gzipped.raw"), _images())
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), _images())


def test_read_idx_returns_a_writable_array(tmp_path: Path) -> None:
    write_idx(tmp_path / "a.gz", _images())
    assert read_idx(tmp_path / "a.gz").flags.writeable


def test_digest_is_sha256_of_decompressed_file_whatever_the_packing(tmp_path: Path) -> None:
    write_idx(tmp_path / "a", _images(), compress=False)
    write_idx(tmp_path / "a.gz", _images())
    want = hashlib.sha256((tmp_path / "a").read_bytes()).hexdigest()
    for name in ("a", "a.gz"):
        assert read_idx_with_digest(tmp_path / name)[1] == want
        assert payload_sha256(tmp_path / name) == want


def test_read_idx_accepts_expected_ndim_and_dtype(tmp_path: Path) -> None:
    write_idx(tmp_path / "a.gz", _images())
    assert read_idx(tmp_path / "a.gz", expect_ndim=3, expect_dtype=np.uint8).shape == (5, 4, 4)


def test_read_idx_rejects_wrong_magic(tmp_path: Path) -> None:
    content = bytearray(_idx_bytes(np.zeros(4, dtype=np.uint8), tmp_path))
    content[1] = 1
    path = _raw_file(tmp_path / "labels", bytes(content))
    msg = f"{re.escape(str(path))}: expected IDX magic 0x00000801, got 0x00010801$"
    with pytest.raises(IdxFormatError, match=msg):
        read_idx(path, expect_ndim=1, expect_dtype=np.uint8)


def test_read_idx_magic_message_marks_unknown_fields(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "x", b"\x12\x34\x56\x78")
    with pytest.raises(IdxFormatError, match=r"expected IDX magic 0x0000TTNN .*got 0x12345678"):
        read_idx(path)


def test_read_idx_rejects_unknown_type_code(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "x", b"\x00\x00\x07\x01\x00\x00\x00\x01\x00")
    with pytest.raises(IdxFormatError, match=r"got 0x00000701 \(unknown type code 0x07; IDX types"):
        read_idx(path)


def test_read_idx_rejects_file_gzipped_twice(tmp_path: Path) -> None:
    write_idx(tmp_path / "once.gz", _images())
    twice = gzip.compress((tmp_path / "once.gz").read_bytes(), mtime=0)
    path = _raw_file(tmp_path / "train-images-idx3-ubyte.gz", gzip.compress(twice, mtime=0))
    msg = (
        rf"{re.escape(str(path))}: expected IDX magic 0x00000803, got 0x1f8b0800 "
        r"\(is it gzipped twice\?\)"
    )
    with pytest.raises(IdxFormatError, match=msg):
        read_idx(path, expect_ndim=3, expect_dtype=np.uint8)


def test_read_idx_rejects_truncated_payload(tmp_path: Path) -> None:
    content = _idx_bytes(_images(), tmp_path)
    path = _raw_file(tmp_path / "short", content[:-10])
    msg = (
        rf"{re.escape(str(path))}: truncated IDX payload: header says shape \(5, 4, 4\) of uint8 "
        r"= 80 bytes, got 70 bytes"
    )
    with pytest.raises(IdxFormatError, match=msg):
        read_idx(path)


def test_read_idx_rejects_truncated_header(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "short", _idx_bytes(_images(), tmp_path)[:8])
    with pytest.raises(
        IdxFormatError, match=r"truncated IDX header: 3 dimensions need 16 bytes, got 8"
    ):
        read_idx(path)


def test_read_idx_rejects_trailing_bytes(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "long.gz", gzip.compress(_idx_bytes(_images(), tmp_path) + b"xyz"))
    name = re.escape(str(path))
    msg = rf"{name}: 3 unexpected bytes after the IDX payload .*= 80 bytes, file holds 83"
    with pytest.raises(IdxFormatError, match=msg):
        read_idx(path)


def test_read_idx_rejects_empty_file(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "empty.gz", b"")
    with pytest.raises(IdxFormatError, match=rf"{re.escape(str(path))}: file is empty \(0 bytes\)"):
        read_idx(path)


def test_read_idx_rejects_gzip_with_bad_crc(tmp_path: Path) -> None:
    write_idx(tmp_path / "a.gz", _images())
    content = bytearray((tmp_path / "a.gz").read_bytes())
    content[-8] ^= 0xFF  # first byte of the CRC-32 trailer
    path = _raw_file(tmp_path / "a.gz", bytes(content))
    with pytest.raises(IdxFormatError, match=rf"{re.escape(str(path))}: corrupt gzip stream \(CRC"):
        read_idx(path)


def test_read_idx_rejects_truncated_gzip(tmp_path: Path) -> None:
    write_idx(tmp_path / "a.gz", _images(50))
    content = (tmp_path / "a.gz").read_bytes()
    path = _raw_file(tmp_path / "a.gz", content[: len(content) // 2])
    with pytest.raises(IdxFormatError, match=rf"{re.escape(str(path))}: corrupt gzip stream"):
        read_idx(path)


def test_payload_sha256_rejects_corrupt_gzip(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "a.gz", b"\x1f\x8bnot really gzip")
    with pytest.raises(IdxFormatError, match="corrupt gzip stream"):
        payload_sha256(path)


def test_read_idx_rejects_wrong_ndim_when_expected(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", _images())
    path = tmp_path / "train-images-idx3-ubyte.gz"
    msg = rf"{re.escape(str(path))}: expected a 1-D IDX array, got 3-D \(magic 0x00000803\)"
    with pytest.raises(IdxFormatError, match=msg):
        read_idx(path, expect_ndim=1)


def test_read_idx_rejects_wrong_dtype_when_expected(tmp_path: Path) -> None:
    write_idx(tmp_path / "a", np.zeros(3, dtype=np.int16))
    msg = r"expected IDX values of type uint8, got int16 \(magic 0x00000b01\)"
    with pytest.raises(IdxFormatError, match=msg):
        read_idx(tmp_path / "a", expect_dtype=np.uint8)


def test_read_idx_raises_file_not_found_for_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")


def test_write_idx_rejects_unsupported_dtype(tmp_path: Path) -> None:
    path = tmp_path / "a.gz"
    msg = (
        rf"{re.escape(str(path))}: cannot write dtype int64 as IDX; expected one of 0x08 \(uint8\)"
    )
    with pytest.raises(IdxFormatError, match=msg):
        write_idx(path, np.zeros(3, dtype=np.int64))
    assert list(tmp_path.iterdir()) == []
