from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.pictures import pixels, png_size
from numpy.typing import NDArray

from softmax_lab.pictures import templates

# ---------------------------------------------------------------------------------------------
# tile_images


def test_tile_images_grid_shape_with_padding_between_tiles_only() -> None:
    tiled = templates.tile_images(np.zeros((784, 10)), ncols=5)
    assert tiled.shape == (2 * 28 + 1, 5 * 28 + 4)
    assert tiled.dtype == np.float64


def test_tile_images_reshapes_each_column_row_major_into_its_tile() -> None:
    n, c = 6, 5  # 2×3 images, 3 per grid row: tiles (0,0) (0,1) (0,2) (1,0) (1,1), one unused
    W = np.zeros((n, c))
    W[:, 4] = np.arange(1, 7)  # column 4: grid row 1, grid column 1
    tiled = templates.tile_images(W, shape=(2, 3), ncols=3, pad=1)
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
    tiled = templates.tile_images(W, ncols=5)
    top, left = 1 * 29, 2 * 29
    np.testing.assert_array_equal(tiled[top : top + 28, left : left + 28], pattern)
    assert np.nansum(tiled) == pattern.sum()


def test_tile_images_with_zero_pad_and_zero_fill() -> None:
    W = np.arange(12.0).reshape(4, 3)  # three 2×2 images
    tiled = templates.tile_images(W, shape=(2, 2), ncols=2, pad=0, fill=0.0)
    assert tiled.shape == (4, 4)
    np.testing.assert_array_equal(tiled[:2, 2:], W[:, 1].reshape(2, 2))
    np.testing.assert_array_equal(tiled[2:, 2:], 0.0)


def test_tile_images_uses_at_most_c_columns() -> None:
    assert templates.tile_images(np.zeros((784, 3)), ncols=5).shape == (28, 3 * 28 + 2)


def test_tile_images_names_expected_and_given_n() -> None:
    with pytest.raises(ValueError, match=r"W has n=780 rows but shape=\(28, 28\) needs h\*w=784"):
        templates.tile_images(np.zeros((780, 10)), ncols=5)


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
        templates.tile_images(W, **{"ncols": 5, **kwargs})


# ---------------------------------------------------------------------------------------------
# templates


def test_plot_templates_theta_is_800_wide_and_as_tall_as_its_grid(tmp_path: Path) -> None:
    theta = np.random.default_rng(0).standard_normal((784, 10)).astype(np.float32)
    titles = [str(i) for i in range(10)]
    out = templates.plot_templates(theta, tmp_path / "theta.png", titles=titles)
    # grid 57×144 px drawn 700 px wide: 277 px tall, plus 10 px margins
    assert png_size(out) == (800, 297)


def test_plot_templates_w1_hidden_units_with_title(tmp_path: Path) -> None:
    W1 = np.random.default_rng(0).standard_normal((784, 16))
    titles = [f"h{i}" for i in range(16)]
    out = templates.plot_templates(W1, tmp_path / "W1.png", titles=titles, ncols=8, title="W1")
    # grid 57×231 px drawn 700 px wide: 173 px tall, plus 10 + 34 px for the title
    assert png_size(out) == (800, 217)


def test_plot_templates_of_all_zero_theta(tmp_path: Path) -> None:
    out = templates.plot_templates(np.zeros((784, 10)), tmp_path / "theta.png")
    assert png_size(out) == (800, 297)


def test_plot_templates_colours_positive_red_negative_blue_zero_white_gaps_grey(
    tmp_path: Path,
) -> None:
    template = np.zeros((28, 28))
    template[:14] = 1.0  # top half positive
    template[14:, :14] = -1.0  # bottom-left quarter negative, bottom-right quarter zero
    W = np.stack([template.ravel(), np.zeros(784)], axis=1)  # (784, 2): two tiles side by side
    rgb = pixels(templates.plot_templates(W, tmp_path / "t.png"))
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
    out = templates.plot_templates(W, tmp_path / "theta.png")
    assert png_size(out) == (800, 45 + 180 + 10)


def test_plot_templates_one_row_shape_draws_the_heatmap(tmp_path: Path) -> None:
    W = np.random.default_rng(0).standard_normal((700, 10))
    out = templates.plot_templates(W, tmp_path / "theta.png", shape=(1, 700))
    assert png_size(out) == (800, 45 + 180 + 10)


def test_plot_templates_takes_an_explicit_rectangular_shape(tmp_path: Path) -> None:
    W = np.random.default_rng(0).standard_normal((20 * 30, 4))
    out = templates.plot_templates(W, tmp_path / "t.png", shape=(20, 30), ncols=4)
    # grid 20×123 px drawn 700 px wide: 114 px tall
    assert png_size(out) == (800, 134)


def test_plot_templates_rejects_wrong_number_of_titles(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="got 3 titles for the 10 columns of W"):
        templates.plot_templates(np.zeros((784, 10)), tmp_path / "t.png", titles=["a", "b", "c"])


def test_plot_templates_rejects_no_columns(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"W has no columns \(c=0\)"):
        templates.plot_templates(np.zeros((700, 0)), tmp_path / "t.png")


def test_plot_templates_of_one_feature_draws_the_heatmap(tmp_path: Path) -> None:
    out = templates.plot_templates(np.array([[0.5, -1.0, 2.0]]), tmp_path / "t.png")
    assert png_size(out) == (800, 45 + 120 + 10)


def test_plot_templates_rejects_a_shape_that_does_not_match_n(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"W has n=784 rows but shape=\(20, 30\) needs"):
        templates.plot_templates(np.zeros((784, 10)), tmp_path / "t.png", shape=(20, 30))
