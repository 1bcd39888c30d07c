from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.pictures import near, pixels, png_size
from numpy.typing import NDArray

from softmax_lab.core import loss
from softmax_lab.pictures import confusion

# ---------------------------------------------------------------------------------------------
# confusion matrix


def test_confusion_matrix_equals_a_hand_count() -> None:
    y_true = np.array([0, 0, 1, 2, 2, 2, 1])
    y_pred = np.array([0, 1, 1, 2, 0, 2, 1])
    cm = loss.confusion_matrix(y_true, y_pred, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 2]])
    assert cm.dtype == np.int64


def test_confusion_matrix_of_uint8_labels_does_not_overflow() -> None:
    y = np.array([29, 29, 3], dtype=np.uint8)  # 29·30 + 29 = 899 > 255
    cm = loss.confusion_matrix(y, y, 30)
    assert cm[29, 29] == 2 and cm[3, 3] == 1 and cm.sum() == 3


def test_confusion_matrix_of_no_examples_is_zeros() -> None:
    np.testing.assert_array_equal(loss.confusion_matrix([], [], 4), np.zeros((4, 4)))


@pytest.mark.parametrize(
    ("y_true", "y_pred", "k", "message"),
    [
        ([0, 1], [0, 3], 3, r"y_pred has labels outside 0..2: min 0, max 3"),
        ([-1, 1], [0, 1], 3, r"y_true has labels outside 0..2: min -1"),
        ([0, 1, 2], [0, 1], 3, r"must be 1-D of equal length; got shapes \(3,\) and \(2,\)"),
        ([0.0, 1.0], [0, 1], 3, "y_true must hold integer class labels, got dtype float64"),
        ([0], [0], 0, "k must be >= 1, got 0"),
    ],
)
def test_confusion_matrix_rejects_bad_input(y_true, y_pred, k: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        loss.confusion_matrix(np.asarray(y_true), np.asarray(y_pred), k)


def test_plot_confusion_writes_a_600x520_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cm = loss.confusion_matrix(rng.integers(0, 10, 1000), rng.integers(0, 10, 1000), 10)
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
