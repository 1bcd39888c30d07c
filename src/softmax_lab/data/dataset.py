"""The :class:`Dataset` value, its error, and the in-process memo that builds it once per source.

:func:`load_cached` returns the memoised dataset for a set of source files, else the parsed
arrays from ``<cache_dir>/parsed/`` (:mod:`softmax_lab.data.parsed_cache`), else whatever its
``parse`` callback returns, wrapped as a read-only :class:`Dataset`. :func:`scale_pixels` is
the one pixel scaling every loader uses.
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

__all__ = ["Dataset", "clear_memory_cache", "load_cached", "scale_pixels"]

_MEMO: dict[tuple[Any, ...], Dataset] = {}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split as float32 design matrices (read-only arrays when from the loader).

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
    """

    name: str
    X_train: NDArray[np.float32]
    y_train: NDArray[np.uint8]
    X_test: NDArray[np.float32]
    y_test: NDArray[np.uint8]
    fingerprint: str
    source: str

    def __post_init__(self) -> None:
        for X, y, part in (
            (self.X_train, self.y_train, "train"),
            (self.X_test, self.y_test, "test"),
        ):
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
        if self.X_test.shape[1] != self.n_features:
            raise DatasetError(
                f"{self.name}: X_test has {self.X_test.shape[1]} features, "
                f"X_train has {self.n_features}"
            )

    @property
    def n_features(self) -> int:
        """Number of input features n (784 for 28x28 images)."""
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes k: 10, or the largest label + 1 when a label exceeds 9."""
        top = max((int(y.max()) for y in (self.y_train, self.y_test) if y.size), default=0)
        return max(10, top + 1)


def scale_pixels(pixels: NDArray[Any]) -> NDArray[np.float32]:
    """(m, ...) uint8 -> (m, n) float32 in [0, 1], exactly ``pixels.astype(np.float32) / 255``."""
    X = pixels.reshape(len(pixels), -1).astype(np.float32)
    X /= 255  # in place: same values as X / 255 without a second 188 MB array for MNIST
    return X


# -- memo and parsed cache -----------------------------------------------------------------


def clear_memory_cache() -> None:
    """Forget the datasets memoised in this process (the on-disk parsed cache stays)."""
    _MEMO.clear()


def load_cached(
    cache: ParsedCache,
    name: str,
    files: Sequence[Path],
    params: str,
    source: str,
    parse: Callable[[], tuple[ParsedArrays, str]],
) -> Dataset:
    """Return the memoised, cached or freshly parsed (`parse`) dataset for `files`."""
    key = source_key(files, params)
    memo_key = (name, key, str(cache.root.resolve()))
    if (hit := _MEMO.get(memo_key)) is not None:
        return hit
    arrays, fingerprint = cache.load(name, key, source, parse)
    for array in arrays:
        array.flags.writeable = False  # shared by every caller through the memo
    dataset = Dataset(name, *arrays, fingerprint=fingerprint, source=source)
    _MEMO[memo_key] = dataset
    return dataset
