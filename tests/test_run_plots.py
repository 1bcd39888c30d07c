from __future__ import annotations

import struct
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from softmax_lab import run_plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TRAIN_RGB, TEST_RGB = (31, 119, 180), (255, 127, 14)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the file is a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert len(data) > 1000, f"{path} is suspiciously small ({len(data)} bytes)"
    return width, height


def pixels(path: Path) -> NDArray[np.int64]:
    """The decoded PNG (a palette image) as an (H, W, 3) int array of colours."""
    with Image.open(path) as im:
        assert im.mode == "P"
        return np.asarray(im.convert("RGB"), dtype=np.int64)


def near(rgb: NDArray[np.int64], colour: tuple[int, int, int], tol: int = 30) -> NDArray[np.bool_]:
    """Where ``rgb`` (..., 3) is within ``tol`` of ``colour`` in every channel."""
    return (np.abs(rgb - colour) <= tol).all(axis=-1)


def history(epochs: int = 10) -> list[dict[str, float]]:
    return [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "train_error": 0.3 / e,
            "test_loss": 1.1 / e,
            "test_error": 0.32 / e,
        }
        for e in range(1, epochs + 1)
    ]


# ---------------------------------------------------------------------------------------------
# learning curves


def test_plot_curves_writes_a_1000x400_png(tmp_path: Path) -> None:
    out = run_plots.plot_curves(history(), tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    assert png_size(out) == (1000, 400)


def test_plot_curves_accepts_a_str_path(tmp_path: Path) -> None:
    out = run_plots.plot_curves(history(), str(tmp_path / "curves.png"))
    assert isinstance(out, Path) and png_size(out) == (1000, 400)


def test_plot_curves_draws_train_and_test_in_their_colours_in_both_panels(tmp_path: Path) -> None:
    rgb = pixels(run_plots.plot_curves(history(), tmp_path / "curves.png"))
    for panel in (rgb[:, :500], rgb[:, 500:]):  # loss, error
        assert near(panel, TRAIN_RGB).sum() > 300
        assert near(panel, TEST_RGB).sum() > 300


def test_plot_curves_of_one_epoch_with_a_title_draws_its_markers(tmp_path: Path) -> None:
    out = run_plots.plot_curves(history(1), tmp_path / "curves.png", title="run 3f2a")
    assert png_size(out) == (1000, 400)
    nan = float("nan")
    legend_only = [{"epoch": 1, **dict.fromkeys(run_plots.HISTORY_KEYS[1:], nan)}]
    blank = pixels(run_plots.plot_curves(legend_only, tmp_path / "blank.png", title="run 3f2a"))
    rgb = pixels(out)
    for colour in (TRAIN_RGB, TEST_RGB):  # a marker of ~25 px in each panel
        assert near(rgb[:, :500], colour).sum() - near(blank[:, :500], colour).sum() > 15
        assert near(rgb[:, 500:], colour).sum() - near(blank[:, 500:], colour).sum() > 15


def test_plot_curves_leaves_a_gap_at_a_non_finite_value(tmp_path: Path) -> None:
    rows = history(6)
    rows[2]["test_loss"] = float("nan")
    rows[3]["test_loss"] = float("inf")
    gapped = pixels(run_plots.plot_curves(rows, tmp_path / "gap.png"))
    whole = pixels(run_plots.plot_curves(history(6), tmp_path / "whole.png"))
    lost = near(whole[:, :500], TEST_RGB).sum() - near(gapped[:, :500], TEST_RGB).sum()
    assert lost > 100  # two points, their markers and the three segments around them
    np.testing.assert_array_equal(gapped[:, 500:], whole[:, 500:])  # the error panel is intact


def test_plot_curves_of_an_all_nan_series_draws_the_other(tmp_path: Path) -> None:
    rows = [{**row, "test_loss": float("nan")} for row in history(4)]
    rgb = pixels(run_plots.plot_curves(rows, tmp_path / "curves.png"))
    assert near(rgb[:, :500], TRAIN_RGB).sum() > 300


def test_plot_curves_rejects_empty_history(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="history is empty"):
        run_plots.plot_curves([], tmp_path / "curves.png")


def test_plot_curves_names_the_missing_key(tmp_path: Path) -> None:
    rows = history(3)
    del rows[1]["test_error"]
    with pytest.raises(ValueError, match=r"history\[1\] lacks 'test_error'; each epoch needs"):
        run_plots.plot_curves(rows, tmp_path / "curves.png")


# ---------------------------------------------------------------------------------------------
# tile_images


def test_tile_images_grid_shape_with_padding_between_tiles_only() -> None:
    tiled = run_plots.tile_images(np.zeros((784, 10)), ncols=5)
    assert tiled.shape == (2 * 28 + 1, 5 * 28 + 4)
    assert tiled.dtype == np.float64


def test_tile_images_reshapes_each_column_row_major_into_its_tile() -> None:
    n, c = 6, 5  # 2×3 images, 3 per grid row: tiles (0,0) (0,1) (0,2) (1,0) (1,1), one unused
    W = np.zeros((n, c))
    W[:, 4] = np.arange(1, 7)  # column 4: grid row 1, grid column 1
    tiled = run_plots.tile_images(W, shape=(2, 3), ncols=3, pad=1)
    assert tiled.shape == (2 * 2 + 1, 3 * 3 + 2)
    np.testing.assert_array_equal(tiled[3:5, 4:7], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(tiled[0:2, 0:3], 0.0)  # column 0 at the top left
    assert np.isnan(tiled[2, :]).all()  # the padding row
    assert np.isnan(tiled[:, 3]).all() and np.isnan(tiled[:, 7]).all()  # padding columns
    assert np.isnan(tiled[3:5, 8:11]).all()  # the unused sixth tile


def test_tile_images_finds_a_marked_mnist_template_at_its_tile() -> None:
    W = np.zeros((784, 10), dtype=np.float32)
    pattern = np.zeros((28, 28), dtype=np.float32)
    pattern[3:25, 13:15] = 1.0  # a "1"
    pattern[24, 8:20] = 2.0
    W[:, 7] = pattern.ravel()  # class 7: grid row 1, grid column 2 with ncols=5
    tiled = run_plots.tile_images(W, ncols=5)
    top, left = 1 * 29, 2 * 29
    np.testing.assert_array_equal(tiled[top : top + 28, left : left + 28], pattern)
    assert np.nansum(tiled) == pattern.sum()


def test_tile_images_with_zero_pad_and_zero_fill() -> None:
    W = np.arange(12.0).reshape(4, 3)  # three 2×2 images
    tiled = run_plots.tile_images(W, shape=(2, 2), ncols=2, pad=0, fill=0.0)
    assert tiled.shape == (4, 4)
    np.testing.assert_array_equal(tiled[:2, 2:], W[:, 1].reshape(2, 2))
    np.testing.assert_array_equal(tiled[2:, 2:], 0.0)


def test_tile_images_uses_at_most_c_columns() -> None:
    assert run_plots.tile_images(np.zeros((784, 3)), ncols=5).shape == (28, 3 * 28 + 2)


def test_tile_images_names_expected_and_given_n() -> None:
    with pytest.raises(ValueError, match=r"W has n=780 rows but shape=\(28, 28\) needs h\*w=784"):
        run_plots.tile_images(np.zeros((780, 10)), ncols=5)


@pytest.mark.parametrize(
    ("W", "kwargs", "message"),
    [
        (np.zeros(784), {}, r"W must be 2-D of shape \(n, c\)"),
        (np.zeros((784, 0)), {}, "W has no columns"),
        (np.zeros((784, 2)), {"ncols": 0}, "ncols must be >= 1, got 0"),
        (np.zeros((784, 2)), {"pad": -1}, "pad must be >= 0, got -1"),
        (np.zeros((784, 2)), {"shape": (0, 784)}, r"shape must be \(h, w\) with h, w >= 1"),
    ],
)
def test_tile_images_rejects_bad_input(W: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_plots.tile_images(W, **{"ncols": 5, **kwargs})


# ---------------------------------------------------------------------------------------------
# templates


def test_plot_templates_theta_is_800_wide_and_as_tall_as_its_grid(tmp_path: Path) -> None:
    theta = np.random.default_rng(0).standard_normal((784, 10)).astype(np.float32)
    titles = [str(i) for i in range(10)]
    out = run_plots.plot_templates(theta, tmp_path / "theta.png", titles=titles)
    # grid 57×144 px drawn 700 px wide: 277 px tall, plus 10 px margins
    assert png_size(out) == (800, 297)


def test_plot_templates_w1_hidden_units_with_title(tmp_path: Path) -> None:
    W1 = np.random.default_rng(0).standard_normal((784, 16))
    titles = [f"h{i}" for i in range(16)]
    out = run_plots.plot_templates(W1, tmp_path / "W1.png", titles=titles, ncols=8, title="W1")
    # grid 57×231 px drawn 700 px wide: 173 px tall, plus 10 + 34 px for the title
    assert png_size(out) == (800, 217)


def test_plot_templates_of_all_zero_theta(tmp_path: Path) -> None:
    out = run_plots.plot_templates(np.zeros((784, 10)), tmp_path / "theta.png")
    assert png_size(out) == (800, 297)


def test_plot_templates_colours_positive_red_negative_blue_zero_white_gaps_grey(
    tmp_path: Path,
) -> None:
    template = np.zeros((28, 28))
    template[:14] = 1.0  # top half positive
    template[14:, :14] = -1.0  # bottom-left quarter negative, bottom-right quarter zero
    W = np.stack([template.ravel(), np.zeros(784)], axis=1)  # (784, 2): two tiles side by side
    rgb = pixels(run_plots.plot_templates(W, tmp_path / "t.png"))
    # the 28×57 grid is drawn 700 px wide from (10, 10): grid pixel (i, j) at these centres
    sx, sy = 700 / 57, round(700 * 28 / 57) / 28

    def at(i: float, j: float) -> NDArray[np.int64]:
        return rgb[round(10 + (i + 0.5) * sy), round(10 + (j + 0.5) * sx)]

    r, g, b = at(7, 20)
    assert r > b + 50 and r > g + 50  # red
    r, g, b = at(21, 7)
    assert b > r + 50  # blue
    assert (at(21, 21) > 235).all()  # near white
    assert (at(10, 40) > 235).all()  # the all-zero second tile
    np.testing.assert_array_equal(at(10, 28), (153, 153, 153))  # the grey gap between tiles


def test_plot_templates_non_square_n_falls_back_to_a_heatmap(tmp_path: Path) -> None:
    W = np.random.default_rng(0).standard_normal((700, 10))
    out = run_plots.plot_templates(W, tmp_path / "theta.png")
    assert png_size(out) == (800, 45 + 180 + 10)


def test_plot_templates_one_row_shape_draws_the_heatmap(tmp_path: Path) -> None:
    W = np.random.default_rng(0).standard_normal((700, 10))
    out = run_plots.plot_templates(W, tmp_path / "theta.png", shape=(1, 700))
    assert png_size(out) == (800, 45 + 180 + 10)


def test_plot_templates_takes_an_explicit_rectangular_shape(tmp_path: Path) -> None:
    W = np.random.default_rng(0).standard_normal((20 * 30, 4))
    out = run_plots.plot_templates(W, tmp_path / "t.png", shape=(20, 30), ncols=4)
    # grid 20×123 px drawn 700 px wide: 114 px tall
    assert png_size(out) == (800, 134)


def test_plot_templates_rejects_wrong_number_of_titles(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="got 3 titles for the 10 columns of W"):
        run_plots.plot_templates(np.zeros((784, 10)), tmp_path / "t.png", titles=["a", "b", "c"])


def test_plot_templates_rejects_no_columns(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"W has no columns \(c=0\)"):
        run_plots.plot_templates(np.zeros((700, 0)), tmp_path / "t.png")


def test_plot_templates_of_one_feature_draws_the_heatmap(tmp_path: Path) -> None:
    out = run_plots.plot_templates(np.array([[0.5, -1.0, 2.0]]), tmp_path / "t.png")
    assert png_size(out) == (800, 45 + 120 + 10)


def test_plot_templates_rejects_a_shape_that_does_not_match_n(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"W has n=784 rows but shape=\(20, 30\) needs"):
        run_plots.plot_templates(np.zeros((784, 10)), tmp_path / "t.png", shape=(20, 30))


# ---------------------------------------------------------------------------------------------
# confusion matrix


def test_confusion_matrix_equals_a_hand_count() -> None:
    y_true = np.array([0, 0, 1, 2, 2, 2, 1])
    y_pred = np.array([0, 1, 1, 2, 0, 2, 1])
    cm = run_plots.confusion_matrix(y_true, y_pred, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 2]])
    assert cm.dtype == np.int64


def test_confusion_matrix_of_uint8_labels_does_not_overflow() -> None:
    y = np.array([29, 29, 3], dtype=np.uint8)  # 29·30 + 29 = 899 > 255
    cm = run_plots.confusion_matrix(y, y, 30)
    assert cm[29, 29] == 2 and cm[3, 3] == 1 and cm.sum() == 3


def test_confusion_matrix_of_no_examples_is_zeros() -> None:
    np.testing.assert_array_equal(run_plots.confusion_matrix([], [], 4), np.zeros((4, 4)))


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
        run_plots.confusion_matrix(np.asarray(y_true), np.asarray(y_pred), k)


def test_plot_confusion_writes_a_600x520_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cm = run_plots.confusion_matrix(rng.integers(0, 10, 1000), rng.integers(0, 10, 1000), 10)
    assert png_size(run_plots.plot_confusion(cm, tmp_path / "cm.png")) == (600, 520)
    raw = run_plots.plot_confusion(cm, tmp_path / "raw.png", normalize=False, title="counts")
    assert png_size(raw) == (600, 520)


def test_plot_confusion_with_an_empty_class_and_many_classes(tmp_path: Path) -> None:
    cm = np.diag(np.arange(25))  # class 0 never occurs: its row is all zeros
    out = run_plots.plot_confusion(cm, tmp_path / "cm.png", labels=[f"c{i}" for i in range(25)])
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
    lum = cell_luminance(pixels(run_plots.plot_confusion(cm, tmp_path / "cm.png")), 10)
    assert lum[0, 0] < lum[0, 1] < lum[0, 2] < lum[0, 3]
    off_diagonal = lum[~np.eye(10, dtype=bool)]
    assert np.diag(lum).max() < off_diagonal.min()


def test_plot_confusion_writes_counts_in_white_on_dark_and_black_on_light(tmp_path: Path) -> None:
    cm = np.array([[900, 100], [0, 1000]])
    rgb = pixels(run_plots.plot_confusion(cm, tmp_path / "cm.png"))
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
        run_plots.plot_confusion(cm, tmp_path / "cm.png")


def test_plot_confusion_rejects_wrong_number_of_labels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="got 2 labels for a 3×3 matrix"):
        run_plots.plot_confusion(np.eye(3, dtype=int), tmp_path / "cm.png", labels=["a", "b"])


# ---------------------------------------------------------------------------------------------
# determinism and isolation


def test_same_inputs_give_the_same_bytes_and_different_inputs_differ(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    theta_a, theta_b = rng.standard_normal((784, 10)), 3 * rng.standard_normal((784, 10))
    cm_a, cm_b = rng.integers(0, 100, (10, 10)), rng.integers(0, 5000, (10, 10))
    curves, templates, confusion = (
        run_plots.plot_curves,
        run_plots.plot_templates,
        run_plots.plot_confusion,
    )
    pairs = {
        "curves": (partial(curves, history(10)), partial(curves, history(3))),
        "theta": (partial(templates, theta_a), partial(templates, theta_b)),
        "cm": (partial(confusion, cm_a), partial(confusion, cm_b)),
    }
    for name, (draw_a, draw_b) in pairs.items():
        first = draw_a(tmp_path / f"{name}_a1.png").read_bytes()
        other = draw_b(tmp_path / f"{name}_b.png").read_bytes()
        again = draw_a(tmp_path / f"{name}_a2.png").read_bytes()
        assert again == first, name
        assert other != first, name


def test_run_plots_never_imports_matplotlib(tmp_path: Path) -> None:
    code = f"""
import sys
import numpy as np
from softmax_lab import run_plots
out = {str(tmp_path)!r}
run_plots.plot_curves([{{"epoch": 1, "train_loss": 1, "train_error": 1, "test_loss": 1,
                         "test_error": 1}}], out + "/c.png")
run_plots.plot_templates(np.ones((784, 3)), out + "/t.png")
run_plots.plot_confusion(run_plots.confusion_matrix([0, 1], [1, 1], 2), out + "/m.png")
assert "matplotlib" not in sys.modules, "matplotlib imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
