"""Property-based tests of the IDX reader: whatever the bytes, only ``IdxFormatError``.

Random bytes, well-formed files with mutated headers, dimensions, lengths and gzip streams: the
reader either returns the array the header describes or raises the project's named error; it
never raises anything else and never hangs (each example has a deadline). The number of examples
is bounded so that CI stays quick.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softmax_lab.data.idx import read_idx_with_digest, write_idx
from softmax_lab.errors import IdxFormatError

FUZZ = settings(
    max_examples=150,
    deadline=2000,  # ms per example: a hang is a failure
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
TYPE_CODES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]


def read_or_named_error(path: Path) -> np.ndarray | None:
    """The array, or None when the reader raised IdxFormatError (anything else propagates)."""
    try:
        array, digest = read_idx_with_digest(path)
    except IdxFormatError as err:
        assert str(path) in str(err), "the error names the file"
        return None
    assert len(digest) == 64
    return array


def idx_bytes(array: np.ndarray, tmp: Path) -> bytes:
    path = tmp / "valid.idx"
    write_idx(path, array, compress=False)
    return path.read_bytes()


small_arrays = st.one_of(
    st.builds(
        lambda shape, seed: np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8),
        st.lists(st.integers(0, 5), min_size=1, max_size=3).map(tuple),
        st.integers(0, 2**16),
    ),
    st.builds(
        lambda n, seed: np.random.default_rng(seed).standard_normal(n).astype(np.float32),
        st.integers(0, 20),
        st.integers(0, 2**16),
    ),
)


@FUZZ
@given(data=st.binary(max_size=300), gz=st.booleans())
def test_random_bytes_give_an_array_or_a_named_error(tmp_path: Path, data: bytes, gz: bool) -> None:
    path = tmp_path / "random"
    path.write_bytes(gzip.compress(data) if gz else data)
    read_or_named_error(path)


@FUZZ
@given(
    code=st.sampled_from([*TYPE_CODES, 0x00, 0x07, 0xFF]),
    dims=st.lists(st.integers(0, 2**32 - 1), max_size=4),
    ndim_lie=st.integers(-1, 1),
    payload=st.binary(max_size=200),
)
def test_random_headers_give_the_array_they_describe_or_a_named_error(
    tmp_path: Path, code: int, dims: list[int], ndim_lie: int, payload: bytes
) -> None:
    ndim = max(0, min(255, len(dims) + ndim_lie))
    header = bytes([0, 0, code, ndim]) + b"".join(struct.pack(">I", d) for d in dims)
    path = tmp_path / "header"
    path.write_bytes(header + payload)
    array = read_or_named_error(path)
    if array is not None:  # then the file held exactly what its header describes
        blob = path.read_bytes()
        assert array.ndim == ndim
        assert array.shape == struct.unpack(f">{ndim}I", blob[4 : 4 + 4 * ndim])
        assert 4 + 4 * ndim + array.nbytes == len(blob)


@FUZZ
@given(
    array=small_arrays,
    position=st.integers(0, 10**6),
    value=st.integers(0, 255),
    cut=st.integers(0, 10**6),
    tail=st.binary(max_size=8),
    gz=st.booleans(),
    gz_first=st.booleans(),
)
def test_mutated_valid_files_give_an_array_or_a_named_error(
    tmp_path: Path,
    array: np.ndarray,
    position: int,
    value: int,
    cut: int,
    tail: bytes,
    gz: bool,
    gz_first: bool,
) -> None:
    """A byte changed, the file cut short or lengthened, before or after gzip."""
    good = idx_bytes(array, tmp_path)
    blob = gzip.compress(good) if gz and gz_first else good
    original = blob
    mutated = bytearray(blob)
    mutated[position % len(mutated)] = value
    mutated = mutated[: max(1, cut % (len(mutated) + 1))] + tail
    blob = gzip.compress(bytes(mutated)) if gz and not gz_first else bytes(mutated)
    path = tmp_path / "mutated"
    path.write_bytes(blob)
    got = read_or_named_error(path)
    if bytes(mutated) == original:  # the mutation changed nothing: the array comes back
        assert got is not None
        np.testing.assert_array_equal(got, array)


@FUZZ
@given(array=small_arrays, gz=st.booleans())
def test_well_formed_files_round_trip(tmp_path: Path, array: np.ndarray, gz: bool) -> None:
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array, compress=gz)
    got, _ = read_idx_with_digest(path)
    assert got.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(got, array)
