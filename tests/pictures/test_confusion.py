from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.pictures import near, pixels, png_size
from numpy.typing import NDArray

from softmax_lab.core.loss import confusion_matrix
from softmax_lab.pictures import confusion


def test_plot_confusion_writes_a_600x520_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cm = confusion_matrix(rng.integers(0, 10, 1000), rng.integers(0, 10, 1000), 10)
    assert png_size(confusion.plot_confusion(cm, tmp_path / "cm.png")) == (600, 520)
    raw = confusion.plot_confusion(cm, tmp_path / "raw.png", normalize=False, title="counts")
    assert png_size(raw) == (600, 520)


def test_plot_confusion_with_an_empty_class_and_many_classes(tmp_path: Path) -> None:
    cm = np.diag(np.arange(25))  # class 0 never occurs: its row is all zeros
    out = confusion.plot_confusion(cm, tmp_path / "cm.png", labels=[f"c{i}" for i in range(25)])
    assert png_size(out) == (600, 520)


def cell_luminance(rgb: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    """(k, k) luminance near each cell's top-left corner, clear of the count at its centre."""
    # the matrix is drawn at x 60..490, y 40..465
    ys = np.round(40 + (np.arange(k) + 0.15) * 425 / k).astype(int)
    xs = np.round(60 + (np.arange(k) + 0.15) * 430 / k).astype(int)
    return rgb[ys[:, None], xs[None, :]] @ np.array([0.299, 0.587, 0.114])


def test_plot_confusion_shades_larger_fractions_darker_and_the_diagonal_darkest(
    tmp_path: Path,
) -> None:
    cm = np.full((10, 10), 2) + np.diag(np.full(10, 80))
    cm[0, :4] = [60, 25, 10, 5]  # row 0: fractions falling left to right
    lum = cell_luminance(pixels(confusion.plot_confusion(cm, tmp_path / "cm.png")), 10)
    assert lum[0, 0] < lum[0, 1] < lum[0, 2] < lum[0, 3]
    off_diagonal = lum[~np.eye(10, dtype=bool)]
    assert np.diag(lum).max() < off_diagonal.min()


def test_plot_confusion_writes_counts_in_white_on_dark_and_black_on_light(tmp_path: Path) -> None:
    cm = np.array([[900, 100], [0, 1000]])
    rgb = pixels(confusion.plot_confusion(cm, tmp_path / "cm.png"))
    # centres of the cells: (0, 0) dark blue (90 %), (0, 1) light (10 %)
    dark = rgb[40 + 106 - 10 : 40 + 106 + 10, 60 + 107 - 20 : 60 + 107 + 20]
    light = rgb[40 + 106 - 10 : 40 + 106 + 10, 60 + 322 - 20 : 60 + 322 + 20]
    assert near(dark, (255, 255, 255), tol=40).sum() > 10  # "900" in white
    assert near(light, (0, 0, 0), tol=60).sum() > 10  # "100" in black


@pytest.mark.parametrize(
    ("cm", "message"),
    [
        (np.zeros((3, 4), dtype=int), r"square \(k, k\) matrix with k >= 1, got shape \(3, 4\)"),
        (np.zeros((0, 0), dtype=int), r"square \(k, k\) matrix with k >= 1, got shape \(0, 0\)"),
        (np.full((2, 2), 0.5), "non-negative integer counts, got dtype float64"),
        (np.array([[1, -1], [0, 2]]), "non-negative integer counts"),
    ],
)
def test_plot_confusion_rejects_bad_matrices(tmp_path: Path, cm: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        confusion.plot_confusion(cm, tmp_path / "cm.png")


def test_plot_confusion_rejects_wrong_number_of_labels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="got 2 labels for a 3×3 matrix"):
        confusion.plot_confusion(np.eye(3, dtype=int), tmp_path / "cm.png", labels=["a", "b"])
