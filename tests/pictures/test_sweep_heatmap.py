from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.pictures import (
    assert_never_imports_matplotlib,
    assert_same_bytes_for_same_input,
    near,
    pixels,
    png_size,
)
from numpy.typing import NDArray

from softmax_lab.pictures import sweep_heatmap
from softmax_lab.pictures.raster import DRAWING, TAB10, VIRIDIS

# ---------------------------------------------------------------------------------------------
# axes, levels, cells


def sweep_frame(lrs: list[float], batches: list[int], epochs: list[int]) -> pd.DataFrame:
    rows = [
        {
            "optim.lr": lr,
            "optim.batch_size": b,
            "optim.epochs": e,
            "model.name": "softmax",
            "test/error": 0.1 + lr / 10 + b / 1000 - e / 100,
        }
        for lr in lrs
        for b in batches
        for e in epochs
    ]
    return pd.DataFrame(rows)


def test_choose_axes_with_two_swept_params_puts_the_most_values_on_x() -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [50, 100], [10])
    assert sweep_heatmap.choose_axes(df, "test/error") == ("optim.lr", "optim.batch_size", None)


def test_choose_axes_with_three_swept_params_facets_by_the_fewest() -> None:
    df = sweep_frame([0.01, 0.1, 0.5, 1.0], [10, 50, 100], [5, 10])
    assert sweep_heatmap.choose_axes(df) == ("optim.lr", "optim.batch_size", "optim.epochs")


def test_choose_axes_with_one_swept_param() -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [100], [10])
    assert sweep_heatmap.choose_axes(df, "test/error") == ("optim.lr", None, None)


def test_choose_axes_with_nothing_swept() -> None:
    assert sweep_heatmap.choose_axes(sweep_frame([0.1], [100], [10])) == (None, None, None)


def test_choose_axes_breaks_ties_in_column_order() -> None:
    df = sweep_frame([0.01, 0.1], [50, 100], [10])
    assert sweep_heatmap.choose_axes(df) == ("optim.lr", "optim.batch_size", None)
    assert sweep_heatmap.choose_axes(df[df.columns[::-1]]) == (
        "optim.batch_size",
        "optim.lr",
        None,
    )


def test_choose_axes_counts_nan_as_a_value() -> None:
    df = pd.DataFrame(
        {"model.hidden_dim": [np.nan, 400.0], "model.name": ["softmax", "mlp"], "m": [0.1, 0.2]}
    )
    assert sweep_heatmap.choose_axes(df, "m") == ("model.hidden_dim", "model.name", None)


def test_choose_axes_only_considers_the_given_params() -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [50, 100], [10])
    df["run_id"] = [f"r{i}" for i in range(len(df))]
    assert sweep_heatmap.choose_axes(df, params=["optim.lr", "optim.batch_size"]) == (
        "optim.lr",
        "optim.batch_size",
        None,
    )


def test_choose_axes_rejects_more_than_three_swept_params() -> None:
    df = sweep_frame([0.01, 0.1], [50, 100], [5, 10])
    df["seed"] = range(len(df))
    with pytest.raises(ValueError, match=r"4 parameters are swept \(seed, .*pass params="):
        sweep_heatmap.choose_axes(df)


def test_choose_axes_rejects_a_missing_metric() -> None:
    with pytest.raises(ValueError, match=r"metric 'test/eror' is not a column of df"):
        sweep_heatmap.choose_axes(sweep_frame([0.1], [100], [10]), "test/eror")


def test_choose_axes_rejects_unknown_params() -> None:
    with pytest.raises(ValueError, match=r"params \['optim.lrr'\] are not parameter columns"):
        sweep_heatmap.choose_axes(sweep_frame([0.1], [100], [10]), params=["optim.lrr"])


def test_plot_sweep_heatmap_of_two_params(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [50, 100], [10])
    out = sweep_heatmap.plot_sweep_heatmap(df, tmp_path / "sweep.png")
    assert png_size(out) == (330 + 110, 290 + 40)  # one 3×2 panel and the colourbar


def test_plot_sweep_heatmap_facets_a_third_param_with_blanks_and_nan(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5, 1.0], [10, 50, 100], [5, 10])
    df = df.drop(index=[0, 5]).reset_index(drop=True)  # two missing combinations
    df.loc[3, "test/error"] = np.nan  # a diverged run
    out = sweep_heatmap.plot_sweep_heatmap(df, tmp_path / "sweep.png")
    assert png_size(out) == (2 * (280 + 110) + 110, 200 + 90 + 40)  # two 4×3 panels


def test_plot_sweep_heatmap_of_one_param_is_a_bar_chart(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [100], [10])
    assert png_size(sweep_heatmap.plot_sweep_heatmap(df, tmp_path / "sweep.png")) == (500, 420)


def test_plot_sweep_heatmap_of_nothing_swept_is_one_cell(tmp_path: Path) -> None:
    df = sweep_frame([0.1], [100], [10])
    assert png_size(sweep_heatmap.plot_sweep_heatmap(df, tmp_path / "sweep.png")) == (440, 330)


def test_plot_sweep_heatmap_sorts_mlflow_string_params_by_value(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [50, 100], [10]).astype({"optim.lr": str})
    labels, _ = sweep_heatmap.parameter_levels(df, "optim.lr")
    assert labels == ["0.01", "0.1", "0.5"]
    assert png_size(sweep_heatmap.plot_sweep_heatmap(df, tmp_path / "sweep.png")) == (440, 330)


def test_plot_sweep_heatmap_rejects_an_empty_frame(tmp_path: Path) -> None:
    df = sweep_frame([0.1], [100], [10]).iloc[:0]
    with pytest.raises(ValueError, match="df has no rows"):
        sweep_heatmap.plot_sweep_heatmap(df, tmp_path / "sweep.png")


def test_plot_sweep_heatmap_rejects_a_non_numeric_metric(tmp_path: Path) -> None:
    df = sweep_frame([0.1, 0.2], [100], [10]).astype({"test/error": str})
    df.loc[0, "test/error"] = "diverged"
    with pytest.raises(ValueError, match="metric column 'test/error' must be numeric"):
        sweep_heatmap.plot_sweep_heatmap(df, tmp_path / "sweep.png")


# ---------------------------------------------------------------------------------------------
# what the pixels say


def cell(
    rgb: NDArray[np.int64], box: tuple[int, int, int, int], shape: tuple[int, int], i: int, j: int
) -> NDArray[np.int64]:
    """The colour of heatmap cell (i, j), y level i counted from the bottom, near its top-left
    corner (clear of the value written at its centre); ``box`` is the cells' (x0, y0, w, h)
    and ``shape`` their (Y, X)."""
    x0, y0, w, h = box
    Y, X = shape
    return rgb[round(y0 + h - (i + 0.85) * h / Y), round(x0 + (j + 0.15) * w / X)]


# a 3×2 heatmap alone (440 × 330): cells from (98, 54), 220 × 200 px
TWO_BOX = (98, 54, 220, 200)


def luminance(rgb: NDArray[np.int64]) -> NDArray[np.float64]:
    return rgb @ np.array([0.299, 0.587, 0.114])


def test_plot_sweep_heatmap_draws_lower_errors_darker_as_viridis_does(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [50, 100], [10])  # error grows with lr and batch size
    rgb = pixels(sweep_heatmap.plot_sweep_heatmap(df, tmp_path / "sweep.png"))
    colours = np.array([[cell(rgb, TWO_BOX, (2, 3), i, j) for j in range(3)] for i in range(2)])
    lum = luminance(colours)  # (2, 3)
    assert (np.diff(lum, axis=1) > 0).all() and (lum[1] > lum[0]).all()
    assert np.abs(colours[0, 0] - VIRIDIS[0]).max() <= 4  # the lowest error: the darkest end
    assert np.abs(colours[1, 2] - VIRIDIS[255]).max() <= 4  # the highest: the yellow end
    assert (
        np.abs(colours[0, 1] - colours[0, 0]).max(),
        np.abs(colours[0, 1] - colours[1, 2]).max(),
    ) > (20, 20)


def test_plot_sweep_heatmap_writes_values_white_on_dark_cells(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [50, 100], [10])
    rgb = pixels(sweep_heatmap.plot_sweep_heatmap(df, tmp_path / "sweep.png"))
    x0, y0, w, h = TWO_BOX
    centre = rgb[y0 + h * 3 // 4 - 6 : y0 + h * 3 // 4 + 6, x0 + w // 6 - 20 : x0 + w // 6 + 20]
    assert near(centre, (255, 255, 255), tol=40).sum() > 10  # "0.051" on dark purple


def test_plot_sweep_heatmap_leaves_blanks_white_and_writes_nan(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5, 1.0], [10, 50, 100], [5, 10])
    df = df.drop(index=[0, 5]).reset_index(drop=True)  # no runs: (lr 0.01, b 10, 5 epochs)
    df.loc[3, "test/error"] = np.nan  # and (0.01, 100, 10); diverged: (0.01, 100, 5)
    rgb = pixels(sweep_heatmap.plot_sweep_heatmap(df, tmp_path / "sweep.png"))
    # two 4×3 panels of cells 280 × 200 px, from (98, 70) and (390 + 98, 70)
    left, right = (98, 70, 280, 200), (488, 70, 280, 200)
    white = (255, 255, 255)
    for box, i in ((left, 0), (left, 2), (right, 2)):  # blank, nan, blank
        np.testing.assert_array_equal(cell(rgb, box, (3, 4), i, 0), white)
    assert not near(cell(rgb, right, (3, 4), 0, 0), white).all()  # finite

    def ink(box: tuple[int, int, int, int], i: int) -> int:
        x0, y0, w, h = box
        yc, xc = round(y0 + h - (i + 0.5) * h / 3), round(x0 + w / 8)
        return int(near(rgb[yc - 6 : yc + 6, xc - 20 : xc + 20], (0, 0, 0), tol=80).sum())

    assert ink(left, 2) > 10  # "nan" in black
    assert ink(left, 0) == 0 and ink(right, 2) == 0  # a blank says nothing


def test_plot_sweep_heatmap_facets_share_one_colour_scale(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5, 1.0], [10, 50, 100], [5, 10])
    df.loc[df["optim.epochs"] == 10, "test/error"] = df["test/error"].max()  # all the top value
    rgb = pixels(sweep_heatmap.plot_sweep_heatmap(df, tmp_path / "sweep.png"))
    left, right = (98, 70, 280, 200), (488, 70, 280, 200)
    top = cell(rgb, right, (3, 4), 0, 0)
    assert np.abs(top - VIRIDIS[255]).max() <= 4
    np.testing.assert_array_equal(cell(rgb, left, (3, 4), 2, 3), top)  # the same value


def test_plot_sweep_heatmap_bars_grow_with_the_value_and_nan_draws_none(tmp_path: Path) -> None:
    df = pd.DataFrame({"optim.lr": [0.01, 0.1, 0.5, 1.0], "test/error": [0.1, 0.3, np.nan, 0.2]})
    rgb = pixels(sweep_heatmap.plot_sweep_heatmap(df, tmp_path / "sweep.png"))
    bar = near(rgb, TAB10[0], tol=10)  # (420, 500)
    columns = np.flatnonzero(bar.sum(axis=0) > 20)
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    assert len(runs) == 3  # no bar for the nan
    heights = [int(bar[:, r].sum(axis=0).max()) for r in runs]
    assert heights[0] * 3 == pytest.approx(heights[1], abs=3)
    assert heights[0] * 2 == pytest.approx(heights[2], abs=3)


# ---------------------------------------------------------------------------------------------
# drawing the aggregated cells


def test_cell_text_size_shrinks_then_gives_up_when_values_do_not_fit() -> None:
    text = np.full((1, 3, 4), "0.101")
    assert sweep_heatmap.cell_text_size(text, 70, 50) == 11
    assert sweep_heatmap.cell_text_size(text, 28, 50) == 8
    assert sweep_heatmap.cell_text_size(text, 15, 50) == 0
    assert sweep_heatmap.cell_text_size(np.full((1, 3, 20), "0.101"), 70, 50) == 8  # many cells


def test_draw_heatmaps_keeps_long_tick_labels_inside_their_panel() -> None:
    F, Y, X = 2, 3, 4
    mean = np.arange(F * Y * X, dtype=np.float64).reshape(F, Y, X)
    text = np.full(mean.shape, "1.00")
    yl = ["mnist", "kmnist_with_a_very_long_name_indeed", "fashion_mnist"]
    levels = (["0.01", "0.1", "0.5", "1"], yl, ["sgd", "adam"])
    with DRAWING:
        canvas, _ = sweep_heatmap.draw_heatmaps(
            mean, text, levels, ("optim.lr", "dataset.name", "optim.name"), metric="m", title="t"
        )
        rgb = np.asarray(canvas).copy()
    assert canvas.size == (2 * (280 + 110) + 110, 200 + 90 + 40)
    # nothing crosses from one panel into the next: a white column between them
    assert (rgb[40:, 390 - 10 : 390 + 2] == 255).all()


# ---------------------------------------------------------------------------------------------
# determinism and isolation


def test_same_inputs_give_the_same_bytes_and_different_inputs_differ(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5, 1.0], [10, 50, 100], [5, 10])
    other = df.assign(**{"test/error": df["test/error"] * 2})
    bars = sweep_frame([0.01, 0.1, 0.5], [100], [10])
    pairs = {
        "heatmap": (
            lambda p: sweep_heatmap.plot_sweep_heatmap(df, p),
            lambda p: sweep_heatmap.plot_sweep_heatmap(other, p),
        ),
        "bars": (
            lambda p: sweep_heatmap.plot_sweep_heatmap(bars, p),
            lambda p: sweep_heatmap.plot_sweep_heatmap(bars.assign(**{"test/error": 0.5}), p),
        ),
    }
    assert_same_bytes_for_same_input(pairs, tmp_path)


def test_drawing_sweep_heatmaps_never_imports_matplotlib(tmp_path: Path) -> None:
    assert_never_imports_matplotlib(f"""
import pandas as pd
from softmax_lab.pictures import sweep_heatmap
df = pd.DataFrame({{"a": [1, 2, 1, 2], "b": [1, 1, 2, 2], "m": [0.1, 0.2, 0.3, 0.4]}})
sweep_heatmap.plot_sweep_heatmap(df, {str(tmp_path / "h.png")!r}, metric="m")
sweep_heatmap.plot_sweep_heatmap(df[df["b"] == 1], {str(tmp_path / "b.png")!r}, metric="m")
""")
