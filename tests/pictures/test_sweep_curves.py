from __future__ import annotations

import numpy as np

from softmax_lab.pictures import sweep_curves
from softmax_lab.pictures.raster import DRAWING


def test_draw_overlay_legend_shows_only_the_rows_that_fit() -> None:
    ranked = [(f"run {k}", np.array([[1.0, k], [2.0, k]])) for k in range(100)]
    with DRAWING:
        canvas, _ = sweep_curves.draw_overlay(ranked, ylabel="e", max_legend=100, title="")
        markers = np.asarray(canvas)[20:445, 666].astype(int)  # (425, 3): down the samples
    rows = np.flatnonzero(np.ptp(markers, axis=1) > 40)
    # rows of 12 px in the 425 px beside the axes: a heading and 34 runs
    assert len(np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)) == 34
