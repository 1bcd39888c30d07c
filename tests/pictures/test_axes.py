from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from softmax_lab.pictures import axes, raster

# ---------------------------------------------------------------------------------------------
# limits and ticks


@pytest.mark.parametrize(
    ("lo", "hi", "kwargs", "expected"),
    [
        (0.31, 0.68, {"n": 8}, [0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65]),
        (-0.39, 0.39, {"n": 8}, [-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3]),
        (0.75, 6.25, {"n": 8, "integer": True}, [1, 2, 3, 4, 5, 6]),
        (0.5, 1.5, {"n": 8, "integer": True}, [1]),
        (0.0, 97.0, {"n": 5}, [0, 20, 40, 60, 80]),
    ],
)
def test_nice_ticks_are_round_steps_inside_the_range(lo, hi, kwargs, expected) -> None:
    np.testing.assert_allclose(axes.nice_ticks(lo, hi, **kwargs), expected)


def test_format_ticks_uses_the_decimals_of_the_step_and_a_true_minus() -> None:
    assert axes.format_ticks(np.array([-0.2, 0.0, 0.2])) == ["−0.2", "0.0", "0.2"]
    assert axes.format_ticks(np.array([0.35, 0.4, 0.45])) == ["0.35", "0.40", "0.45"]
    assert axes.format_ticks(np.array([1.0, 2.0])) == ["1", "2"]
    assert axes.format_ticks(np.array([2e5, 4e5])) == ["2e+05", "4e+05"]


def test_limits_add_5_percent_margins_and_skip_non_finite_values() -> None:
    assert axes.limits(np.array([1.0, np.nan, 3.0, np.inf])) == pytest.approx((0.9, 3.1))
    assert axes.limits(np.array([2.0])) == pytest.approx((1.9, 2.1))
    assert axes.limits(np.array([np.nan])) == (0.0, 1.0)


def test_fit_tick_labels_shrinks_thins_or_shortens() -> None:
    assert axes.fit_tick_labels(["0.01", "0.1"], 100) == (["0.01", "0.1"], 14, 1)
    many = [f"{v:.3f}" for v in np.linspace(0.001, 0.02, 20)]
    labels, size, every = axes.fit_tick_labels(many, 20, thin=True)
    assert (labels, size) == (many, 10) and every == 2  # each ~33 px wide at 10 px
    labels, size, every = axes.fit_tick_labels(["kmnist_with_a_very_long_name"], 60)
    assert size == 10 and every == 1 and labels[0].endswith("…")


# ---------------------------------------------------------------------------------------------
# lines and the epoch panel


def test_draw_series_leaves_a_gap_at_a_non_finite_point() -> None:
    canvas = Image.new("RGB", (100, 20), raster.WHITE)
    points = np.array([[5.0, 10], [30, 10], [50, np.nan], [70, 10], [95, 10]])
    axes.draw_series(ImageDraw.Draw(canvas), points, raster.BLACK, width=2)
    ink = (np.asarray(canvas)[10] < 128).all(axis=1)  # (100,) along the line's row
    assert ink[5:31].all() and ink[70:96].all()
    assert not ink[31:70].any()


def test_epoch_panel_maps_its_limits_to_the_panel_corners() -> None:
    x, y = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.25, 0.1])
    plot = axes.EpochPanel.over(x, y, 200, 100, xticks=8)
    assert plot.panel.size == (400, 200)  # drawn at 2×
    corners = plot.at(np.array([plot.xlo, plot.xlo]), np.array([plot.yhi, plot.yt.min()]))
    np.testing.assert_allclose(corners[0], [0.0, 0.0])
    assert corners[1, 1] <= 200  # the lowest y tick lies inside the panel
    assert list(plot.xt) == [1.0, 2.0, 3.0]


def test_epoch_panel_of_one_epoch_centres_it_with_one_tick() -> None:
    plot = axes.EpochPanel.over(np.array([4.0]), np.array([0.3]), 200, 100, xticks=8)
    assert list(plot.xt) == [4.0]
    np.testing.assert_allclose(plot.at(np.array([4.0]), np.array([0.3]))[0, 0], 200.0)
