"""Shared data fixtures: small IDX datasets written to tmp dirs, local HTTP mirrors, full MNIST."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.data import IdxSetWriter, Mirror, serve_directory
from numpy.typing import NDArray

from softmax_lab.data.idx import write_idx
from softmax_lab.data.idx_sets import IDX_FILES


@pytest.fixture
def write_idx_set() -> IdxSetWriter:
    """Factory: write the four MNIST-named IDX files of a small random dataset into a directory.

    ``write_idx_set(directory, n_train=200, n_test=50, compress=True, seed=0)`` returns the raw
    arrays keyed by base file name (images (m, 28, 28) uint8, labels (m,) uint8 in 0..9).
    """

    def write(
        directory: Path,
        *,
        n_train: int = 200,
        n_test: int = 50,
        compress: bool = True,
        seed: int = 0,
    ) -> dict[str, NDArray[np.uint8]]:
        rng = np.random.default_rng(seed)
        arrays = {}
        for base, m in zip(IDX_FILES, (n_train, n_train, n_test, n_test), strict=True):
            shape = (m, 28, 28) if "images" in base else (m,)
            arrays[base] = rng.integers(0, 256 if len(shape) == 3 else 10, shape, dtype=np.uint8)
        directory.mkdir(parents=True, exist_ok=True)
        for base, array in arrays.items():
            write_idx(directory / (base + ".gz" if compress else base), array)
        return arrays

    return write


@pytest.fixture
def http_mirror(tmp_path: Path) -> Iterator[Mirror]:
    """A real ThreadingHTTPServer on 127.0.0.1 (free port) serving ``tmp_path / "mirror"``."""
    root = tmp_path / "mirror"
    root.mkdir()
    with serve_directory(root) as (url, requests):
        yield Mirror(root, url, requests)


@pytest.fixture
def dead_url() -> str:
    """A URL on a local port that nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real-digit IDX dataset (800 train / 200 test from mnist_5k), written as IDX files.

    Real digits, so short runs learn; tiny, so sweeps over it take seconds.
    """
    from softmax_lab.data.sources import load_dataset

    d = load_dataset("mnist_5k")
    directory = tmp_path_factory.mktemp("digits")
    to_images = lambda X: np.rint(X * 255).astype(np.uint8).reshape(-1, 28, 28)  # noqa: E731
    parts = (to_images(d.X_train[:800]), d.y_train[:800], to_images(d.X_test[:200]), d.y_test[:200])
    for base, array in zip(IDX_FILES, parts, strict=True):
        write_idx(directory / (base + ".gz"), array)
    return directory


@pytest.fixture(scope="session")
def cmp_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real SQLite store whose experiment ``cmp`` holds ``compare_runs.RUNS``; its URI."""
    from helpers.compare_runs import make_store

    return make_store(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="session")
def cmp_frame(cmp_store: str) -> Any:
    """``tracking.runs_frame`` of ``cmp_store``'s experiment ``cmp``."""
    from softmax_lab.tracking.reading import runs_frame

    return runs_frame(cmp_store, "cmp")


# The four full-MNIST files in the workplace's shared directory, beside the repository (payloads
# identical to the canonical files): CI checks the reference table on them.
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"


@pytest.fixture(scope="session")
def mnist_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data cache directory holding full MNIST, filled through the real download path.

    The files of ``$SOFTMAX_LAB_MNIST_MIRROR`` (default ``../shared/datasets/mnist`` beside the
    repository) are served by a local HTTP server on 127.0.0.1 and downloaded into a fresh cache
    by ``load_dataset``'s own code, verified by their payload SHA-256s. Without those files the
    tests that need it are skipped, except in CI (``CI`` set), where they fail.
    """
    from softmax_lab.data.idx_sets import MNIST, load_remote_idx
    from softmax_lab.data.parsed_cache import ParsedCache

    source = Path(os.environ.get("SOFTMAX_LAB_MNIST_MIRROR", SHARED_MNIST))
    if not all((source / f"{base}.gz").is_file() for base in IDX_FILES):
        message = f"full MNIST (the four .gz files) is not in {source}"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI checks the reference table on it")
        pytest.skip(message)
    cache = tmp_path_factory.mktemp("mnist-cache")
    with serve_directory(source) as (url, requests):
        load_remote_idx(MNIST, cache=ParsedCache(cache), download=True, mirrors=[url])
    assert sorted(requests) == sorted(f"/{base}.gz" for base in IDX_FILES)
    return cache
