"""Shared data fixtures: small IDX datasets written to tmp dirs, a local HTTP mirror."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.data import IdxSetWriter, Mirror
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
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    # A short poll interval makes shutdown() quick (it waits for the next poll).
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield Mirror(root, f"http://127.0.0.1:{server.server_address[1]}", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


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
