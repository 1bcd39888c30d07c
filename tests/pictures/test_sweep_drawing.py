from __future__ import annotations

import numpy as np

from softmax_lab.pictures import sweep_drawing
from softmax_lab.pictures.raster import DRAWING


def test_value_size_shrinks_then_gives_up_when_values_do_not_fit() -> None:
    text = np.full((1, 3, 4), "0.101")
    assert sweep_drawing._value_size(text, 70, 50) == 11
    assert sweep_drawing._value_size(text, 28, 50) == 8
    assert sweep_drawing._value_size(text, 15, 50) == 0
    assert sweep_drawing._value_size(np.full((1, 3, 20), "0.101"), 70, 50) == 8  # many cells


def test_draw_heatmaps_keeps_long_tick_labels_inside_their_panel() -> None:
    F, Y, X = 2, 3, 4
    mean = np.arange(F * Y * X, dtype=np.float64).reshape(F, Y, X)
    text = np.full(mean.shape, "1.00")
    yl = ["mnist", "kmnist_with_a_very_long_name_indeed", "fashion_mnist"]
    levels = (["0.01", "0.1", "0.5", "1"], yl, ["sgd", "adam"])
    with DRAWING:
        canvas, _ = sweep_drawing.draw_heatmaps(
            mean, text, levels, ("optim.lr", "dataset.name", "optim.name"), metric="m", title="t"
        )
        rgb = np.asarray(canvas).copy()
    assert canvas.size == (2 * (280 + 110) + 110, 200 + 90 + 40)
    # nothing crosses from one panel into the next: a white column between them
    assert (rgb[40:, 390 - 10 : 390 + 2] == 255).all()
