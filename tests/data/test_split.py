"""The validation split (``dataset.val_size``): seeded, stratified, disjoint, fingerprinted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from softmax_lab.data.dataset import Dataset, clear_memory_cache
from softmax_lab.data.idx import write_idx
from softmax_lab.data.idx_sets import IDX_FILES
from softmax_lab.data.sources import load_dataset
from softmax_lab.data.split import hold_out, proportional_counts, stratified_split
from softmax_lab.errors import DatasetError

# an unbalanced training set: class c has CLASS_SIZES[c] rows, interleaved
CLASS_SIZES = (90, 70, 60, 50, 40, 30, 25, 15, 12, 8)  # 400 rows


@pytest.fixture(autouse=True)
def _fresh_memo() -> Iterator[None]:
    clear_memory_cache()
    yield
    clear_memory_cache()


@pytest.fixture
def numbered(tmp_path: Path) -> Path:
    """IDX files whose train image i carries its row number i in its first two pixels, so a
    held-out row can be traced back to its place in the training set."""
    rng = np.random.default_rng(5)
    y = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), CLASS_SIZES))
    m = len(y)
    images = rng.integers(0, 256, (m, 28, 28), dtype=np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.arange(m) // 256, np.arange(m) % 256
    test_images = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    test_labels = rng.integers(0, 10, 50, dtype=np.uint8)
    directory = tmp_path / "numbered"
    directory.mkdir()
    for base, array in zip(IDX_FILES, (images, y, test_images, test_labels), strict=True):
        write_idx(directory / f"{base}.gz", array)
    return directory


def _rows(X: np.ndarray) -> np.ndarray:
    """The row numbers the ``numbered`` images carry."""
    pixels = np.rint(X[:, :2] * 255).astype(int)  # (m, 2)
    return pixels[:, 0] * 256 + pixels[:, 1]


def _load(directory: Path, **kwargs: int) -> Dataset:
    return load_dataset("idx", path=directory, cache_dir=directory.parent / "cache", **kwargs)


def test_held_out_rows_are_disjoint_from_the_rest_and_together_the_training_set(
    numbered: Path,
) -> None:
    whole = _load(numbered)
    split = _load(numbered, val_size=100)
    assert split.X_train.shape == (300, 784) and split.X_val is not None
    assert split.X_val.shape == (100, 784) and split.y_val is not None
    assert split.y_val.shape == (100,) and split.y_train.shape == (300,)
    kept, held = _rows(split.X_train), _rows(split.X_val)
    assert not set(kept) & set(held)
    assert sorted([*kept, *held]) == list(range(400))
    # each part keeps the rows' original order, so in-order SGD sees the rest as before
    assert (np.diff(kept) > 0).all() and (np.diff(held) > 0).all()
    np.testing.assert_array_equal(split.X_train, whole.X_train[kept])
    np.testing.assert_array_equal(split.y_val, whole.y_train[held])
    assert split.X_test is whole.X_test and split.y_test is whole.y_test
    assert whole.X_val is None and whole.y_val is None


def test_the_split_is_stratified_by_class(numbered: Path) -> None:
    split = _load(numbered, val_size=100)
    assert split.y_val is not None
    # a quarter of every class (largest remainders round the shares up)
    assert np.bincount(split.y_val, minlength=10).tolist() == [
        23, 18, 15, 12, 10, 7, 6, 4, 3, 2,
    ]  # fmt: skip
    counts = np.bincount(split.y_val, minlength=10) + np.bincount(split.y_train, minlength=10)
    assert counts.tolist() == list(CLASS_SIZES)


def test_proportional_counts_sum_to_the_total_within_one_of_each_share() -> None:
    y = np.repeat(np.arange(10), CLASS_SIZES)
    for total in (1, 7, 99, 100, 250, 399):
        counts = proportional_counts(y, total)
        exact = np.array(CLASS_SIZES) * total / 400
        assert counts.sum() == total
        assert (np.abs(counts - exact) < 1).all() and (counts <= CLASS_SIZES).all()


def test_stratified_split_draws_the_asked_rows_of_each_class() -> None:
    y = np.array([2, 0, 2, 1, 0, 2, 2, 1], dtype=np.uint8)
    kept, held = stratified_split(y, np.array([1, 0, 3]), np.random.default_rng(0))
    assert np.bincount(y[held], minlength=3).tolist() == [1, 0, 3]
    assert sorted([*kept, *held]) == list(range(8))


def test_the_split_is_seeded_by_split_seed(numbered: Path) -> None:
    a = _rows(_load(numbered, val_size=100, split_seed=0).X_val)
    clear_memory_cache()
    again = _rows(_load(numbered, val_size=100, split_seed=0).X_val)
    other = _rows(_load(numbered, val_size=100, split_seed=1).X_val)
    np.testing.assert_array_equal(a, again)
    assert set(a) != set(other)
    # golden: the first rows held out with split_seed=0
    assert a[:8].tolist() == [0, 6, 10, 17, 19, 22, 34, 35]


def test_the_split_changes_the_fingerprint_and_zero_changes_nothing(numbered: Path) -> None:
    whole = _load(numbered)
    assert _load(numbered, val_size=0) is whole  # the same memoised object, the same data
    fingerprints = {
        whole.fingerprint,
        _load(numbered, val_size=100).fingerprint,
        _load(numbered, val_size=101).fingerprint,
        _load(numbered, val_size=100, split_seed=1).fingerprint,
    }
    assert len(fingerprints) == 4


def test_a_split_is_memoised_and_read_only(numbered: Path) -> None:
    split = _load(numbered, val_size=100)
    assert _load(numbered, val_size=100) is split
    assert split.X_val is not None and split.y_val is not None
    for array in (split.X_train, split.y_train, split.X_val, split.y_val):
        assert not array.flags.writeable and array.flags.c_contiguous
    assert split.X_val.dtype == np.float32 and split.y_val.dtype == np.uint8


@pytest.mark.parametrize("val_size", [400, 401, 10_000])
def test_a_val_size_not_smaller_than_the_training_set_is_one_clear_error(
    numbered: Path, val_size: int
) -> None:
    with pytest.raises(
        DatasetError,
        match=(
            rf"^dataset\.val_size must be smaller than the training set of idx "
            rf"\(400 examples\), got {val_size}$"
        ),
    ):
        _load(numbered, val_size=val_size)


@pytest.mark.parametrize("val_size", [-1, True, 2.5])
def test_load_dataset_rejects_a_bad_val_size(numbered: Path, val_size: object) -> None:
    with pytest.raises(DatasetError, match="val_size"):
        _load(numbered, val_size=val_size)  # type: ignore[arg-type]


def test_hold_out_of_zero_is_the_dataset_itself(numbered: Path) -> None:
    whole = _load(numbered)
    assert hold_out(whole, val_size=0, split_seed=3) is whole


def test_dataset_checks_its_validation_part() -> None:
    X = np.zeros((4, 3), np.float32)
    y = np.zeros(4, np.uint8)
    with pytest.raises(DatasetError, match="X_val and y_val must be given together"):
        Dataset("d", X, y, X, y, "", "", X_val=X)
    with pytest.raises(DatasetError, match=r"X_val has 2 features, X_train has 3"):
        Dataset("d", X, y, X, y, "", "", X_val=np.zeros((4, 2), np.float32), y_val=y)
    with pytest.raises(DatasetError, match=r"d: y_val: labels must be in 0\.\.9"):
        Dataset("d", X, y, X, y, "", "", X_val=X, y_val=np.full(4, 12, np.uint8))


def test_mnist_5k_with_a_validation_split_holds_out_100_of_each_digit(tmp_path: Path) -> None:
    split = load_dataset("mnist_5k", cache_dir=tmp_path, val_size=1000)
    assert split.y_val is not None
    assert np.bincount(split.y_val).tolist() == [100] * 10
    assert np.bincount(split.y_train).tolist() == [300] * 10
    assert split.X_test.shape == (1000, 784)
