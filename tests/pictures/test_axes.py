from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from softmax_lab.pictures import axes, raster


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
