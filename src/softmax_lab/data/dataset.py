"""The :class:`Dataset` value, its labels' check, and the in-process memo that builds it once.

:func:`memoised` is the in-process memo (datasets and their validation splits);
:func:`load_cached` returns the memoised dataset for a set of source files and class count,
else the parsed arrays from ``<cache_dir>/parsed/`` (:mod:`softmax_lab.data.parsed_cache`), else
whatever its ``parse`` callback returns, wrapped as a read-only :class:`Dataset` once its labels
passed :func:`check_labels` (on every build, so the parsed cache never skips it).
:func:`scale_pixels` is the one pixel scaling every loader uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from softmax_lab.data.parsed_cache import ParsedArrays, ParsedCache, source_key
from softmax_lab.errors import DatasetError

__all__ = [
    "DEFAULT_N_CLASSES",
    "Dataset",
    "check_labels",
    "clear_memory_cache",
    "load_cached",
    "memoised",
    "scale_pixels",
]

DEFAULT_N_CLASSES = 10  # MNIST-format sets: digits or Fashion-MNIST's ten kinds of clothing
SHOWN_BAD_LABELS = 5  # distinct out-of-range values a message lists before "…"

_MEMO: dict[tuple[Any, ...], Dataset] = {}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split, and maybe a validation part, as float32 design matrices (read-only
    arrays when from the loader).

    Attributes
    ----------
    name : str
        Dataset name, one of ``DATASET_NAMES``.
    X_train : ndarray of shape (m, n), float32, C-contiguous
        Pixels scaled to [0, 1] by ``pixels.astype(np.float32) / 255``.
    y_train : ndarray of shape (m,), uint8
        Class labels.
    X_test : ndarray of shape (m_test, n), float32, C-contiguous
    y_test : ndarray of shape (m_test,), uint8
    fingerprint : str
        Hex SHA-256 identifying the data: over the four IDX payload SHA-256s (train-images,
        train-labels, t10k-images, t10k-labels) or, for mnist_5k, over the CSV payload
        SHA-256 and the split parameters. Independent of gzip packing and of file locations.
    source : str
        Directory or file the data came from.
    n_classes : int
        Number of classes k (>= 2): the width of the model's output. Every label is in
        ``0..k-1``; a class may have no example (a test set without 9s still gives k = 10).
    X_val : ndarray of shape (m_val, n), float32, C-contiguous, or None
        The validation part (``dataset.val_size`` rows held out of the training set by
        ``softmax_lab.data.split.hold_out``); ``None`` without one.
    y_val : ndarray of shape (m_val,), uint8, or None

    Raises
    ------
    DatasetError
        Arrays of the wrong dtype, shape or layout, or a label outside ``0..n_classes-1``.
    """

    name: str
    X_train: NDArray[np.float32]
    y_train: NDArray[np.uint8]
    X_test: NDArray[np.float32]
    y_test: NDArray[np.uint8]
    fingerprint: str
    source: str
    n_classes: int = DEFAULT_N_CLASSES
    X_val: NDArray[np.float32] | None = None
    y_val: NDArray[np.uint8] | None = None

    def __post_init__(self) -> None:
        if (self.X_val is None) != (self.y_val is None):
            raise DatasetError(f"{self.name}: X_val and y_val must be given together or not at all")
        parts = [(self.X_train, self.y_train, "train"), (self.X_test, self.y_test, "test")]
        if self.X_val is not None and self.y_val is not None:
            parts.append((self.X_val, self.y_val, "val"))
        for X, y, part in parts:
            if X.ndim != 2 or X.dtype != np.float32 or not X.flags.c_contiguous:
                layout = "" if X.flags.c_contiguous else ", not C-contiguous"
                raise DatasetError(
                    f"{self.name}: X_{part} must be a C-contiguous 2-D float32 array, got "
                    f"{X.ndim}-D {X.dtype}{layout}; use np.ascontiguousarray(X, dtype=np.float32)"
                )
            if y.shape != (X.shape[0],) or y.dtype != np.uint8:
                raise DatasetError(
                    f"{self.name}: y_{part} must be uint8 of shape ({X.shape[0]},), "
                    f"got {y.dtype} of shape {y.shape}"
                )
        for X, _, part in parts[1:]:
            if X.shape[1] != self.n_features:
                raise DatasetError(
                    f"{self.name}: X_{part} has {X.shape[1]} features, "
                    f"X_train has {self.n_features}"
                )
        for _, y, part in parts:
            check_labels(y, self.n_classes, source=f"{self.name}: y_{part}")

    @property
    def n_features(self) -> int:
        """Number of input features n (784 for 28x28 images)."""
        return int(self.X_train.shape[1])


def check_labels(y: NDArray[np.integer], n_classes: int, *, source: str) -> None:
    """Raise unless every label of ``y`` is a class ``0..n_classes-1``.

    Parameters
    ----------
    y : ndarray of shape (m,), integer
    n_classes : int
        k >= 2.
    source : str
        What holds the labels, to start the message: the label file's path.

    Raises
    ------
    DatasetError
        ``n_classes`` below 2, or labels out of range, e.g. ``t10k-labels-idx1-ubyte.gz: labels
        must be in 0..9 (dataset.n_classes=10), got 255 in 1 of 10000 labels``.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 2:
        raise DatasetError(f"{source}: n_classes must be an int >= 2, got {n_classes!r}")
    if not y.size or (int(y.min()) >= 0 and int(y.max()) < n_classes):  # two cheap passes
        return
    bad = (y < 0) | (y >= n_classes)  # (m,)
    values = np.unique(y[bad])
    shown = ", ".join(str(v) for v in values[:SHOWN_BAD_LABELS])
    more = ", …" if len(values) > SHOWN_BAD_LABELS else ""
    raise DatasetError(
        f"{source}: labels must be in 0..{n_classes - 1} (dataset.n_classes={n_classes}), got "
        f"{shown}{more} in {int(bad.sum())} of {y.size} labels; if the set has more classes, "
        "set dataset.n_classes to their number"
    )


def scale_pixels(pixels: NDArray[Any]) -> NDArray[np.float32]:
    """(m, ...) uint8 -> (m, n) float32 in [0, 1], exactly ``pixels.astype(np.float32) / 255``."""
    X = pixels.reshape(len(pixels), -1).astype(np.float32)
    X /= 255  # in place: same values as X / 255 without a second 188 MB array for MNIST
    return X


# -- memo and parsed cache -----------------------------------------------------------------


def clear_memory_cache() -> None:
    """Forget the datasets memoised in this process (the on-disk parsed cache stays)."""
    _MEMO.clear()


def memoised(key: tuple[Any, ...], build: Callable[[], Dataset]) -> Dataset:
    """The dataset memoised under ``key`` in this process, else ``build()``'s, memoised."""
    if (hit := _MEMO.get(key)) is None:
        hit = _MEMO[key] = build()
    return hit


def load_cached(
    cache: ParsedCache,
    name: str,
    files: Sequence[Path],
    params: str,
    source: str,
    parse: Callable[[], tuple[ParsedArrays, str]],
    *,
    n_classes: int = DEFAULT_N_CLASSES,
    label_sources: tuple[str, str] = ("y_train", "y_test"),
) -> Dataset:
    """Return the memoised, cached or freshly parsed (`parse`) dataset for `files`.

    Its labels are checked against ``n_classes`` whenever a dataset is built, from the parsed
    cache too, so an out-of-range label is always reported, naming ``label_sources`` (where the
    train and the test labels come from: their files); the memo holds only checked datasets.
    """
    key = source_key(files, params)

    def build() -> Dataset:
        arrays, fingerprint = cache.load(name, key, source, parse)
        check_labels(arrays.y_train, n_classes, source=label_sources[0])
        check_labels(arrays.y_test, n_classes, source=label_sources[1])
        for array in arrays:
            array.flags.writeable = False  # shared by every caller through the memo
        return Dataset(name, *arrays, fingerprint=fingerprint, source=source, n_classes=n_classes)

    return memoised((name, key, str(cache.root.resolve()), n_classes), build)
