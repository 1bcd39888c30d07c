from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.pictures import near, pixels, png_size
from numpy.typing import NDArray

from softmax_lab.pictures import sweep_pictures
from softmax_lab.pictures.raster import TAB10, VIRIDIS

# ---------------------------------------------------------------------------------------------
# sweeps


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
    assert sweep_pictures.choose_axes(df, "test/error") == ("optim.lr", "optim.batch_size", None)


def test_choose_axes_with_three_swept_params_facets_by_the_fewest() -> None:
    df = sweep_frame([0.01, 0.1, 0.5, 1.0], [10, 50, 100], [5, 10])
    assert sweep_pictures.choose_axes(df) == ("optim.lr", "optim.batch_size", "optim.epochs")


def test_choose_axes_with_one_swept_param() -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [100], [10])
    assert sweep_pictures.choose_axes(df, "test/error") == ("optim.lr", None, None)


def test_choose_axes_with_nothing_swept() -> None:
    assert sweep_pictures.choose_axes(sweep_frame([0.1], [100], [10])) == (None, None, None)


def test_choose_axes_breaks_ties_in_column_order() -> None:
    df = sweep_frame([0.01, 0.1], [50, 100], [10])
    assert sweep_pictures.choose_axes(df) == ("optim.lr", "optim.batch_size", None)
    assert sweep_pictures.choose_axes(df[df.columns[::-1]]) == (
        "optim.batch_size",
        "optim.lr",
        None,
    )


def test_choose_axes_counts_nan_as_a_value() -> None:
    df = pd.DataFrame(
        {"model.hidden_dim": [np.nan, 400.0], "model.name": ["softmax", "mlp"], "m": [0.1, 0.2]}
    )
    assert sweep_pictures.choose_axes(df, "m") == ("model.hidden_dim", "model.name", None)


def test_choose_axes_only_considers_the_given_params() -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [50, 100], [10])
    df["run_id"] = [f"r{i}" for i in range(len(df))]
    assert sweep_pictures.choose_axes(df, params=["optim.lr", "optim.batch_size"]) == (
        "optim.lr",
        "optim.batch_size",
        None,
    )


def test_choose_axes_rejects_more_than_three_swept_params() -> None:
    df = sweep_frame([0.01, 0.1], [50, 100], [5, 10])
    df["seed"] = range(len(df))
    with pytest.raises(ValueError, match=r"4 parameters are swept \(seed, .*pass params="):
        sweep_pictures.choose_axes(df)


def test_choose_axes_rejects_a_missing_metric() -> None:
    with pytest.raises(ValueError, match=r"metric 'test/eror' is not a column of df"):
        sweep_pictures.choose_axes(sweep_frame([0.1], [100], [10]), "test/eror")


def test_choose_axes_rejects_unknown_params() -> None:
    with pytest.raises(ValueError, match=r"params \['optim.lrr'\] are not parameter columns"):
        sweep_pictures.choose_axes(sweep_frame([0.1], [100], [10]), params=["optim.lrr"])


def test_plot_sweep_heatmap_of_two_params(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [50, 100], [10])
    out = sweep_pictures.plot_sweep_heatmap(df, tmp_path / "sweep.png")
    assert png_size(out) == (330 + 110, 290 + 40)  # one 3×2 panel and the colourbar


def test_plot_sweep_heatmap_facets_a_third_param_with_blanks_and_nan(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5, 1.0], [10, 50, 100], [5, 10])
    df = df.drop(index=[0, 5]).reset_index(drop=True)  # two missing combinations
    df.loc[3, "test/error"] = np.nan  # a diverged run
    out = sweep_pictures.plot_sweep_heatmap(df, tmp_path / "sweep.png")
    assert png_size(out) == (2 * (280 + 110) + 110, 200 + 90 + 40)  # two 4×3 panels


def test_plot_sweep_heatmap_of_one_param_is_a_bar_chart(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [100], [10])
    assert png_size(sweep_pictures.plot_sweep_heatmap(df, tmp_path / "sweep.png")) == (500, 420)


def test_plot_sweep_heatmap_of_nothing_swept_is_one_cell(tmp_path: Path) -> None:
    df = sweep_frame([0.1], [100], [10])
    assert png_size(sweep_pictures.plot_sweep_heatmap(df, tmp_path / "sweep.png")) == (440, 330)


def test_plot_sweep_heatmap_sorts_mlflow_string_params_by_value(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [50, 100], [10]).astype({"optim.lr": str})
    labels, _ = sweep_pictures._levels(df, "optim.lr")
    assert labels == ["0.01", "0.1", "0.5"]
    assert png_size(sweep_pictures.plot_sweep_heatmap(df, tmp_path / "sweep.png")) == (440, 330)


def test_plot_sweep_heatmap_rejects_an_empty_frame(tmp_path: Path) -> None:
    df = sweep_frame([0.1], [100], [10]).iloc[:0]
    with pytest.raises(ValueError, match="df has no rows"):
        sweep_pictures.plot_sweep_heatmap(df, tmp_path / "sweep.png")


def test_plot_sweep_heatmap_rejects_a_non_numeric_metric(tmp_path: Path) -> None:
    df = sweep_frame([0.1, 0.2], [100], [10]).astype({"test/error": str})
    df.loc[0, "test/error"] = "diverged"
    with pytest.raises(ValueError, match="metric column 'test/error' must be numeric"):
        sweep_pictures.plot_sweep_heatmap(df, tmp_path / "sweep.png")


def test_plot_overlaid_curves_caps_the_legend(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    curves = {
        f"optim.lr={lr:.3f}": [(e, float(v)) for e, v in enumerate(rng.random(10), start=1)]
        for lr in np.linspace(0.01, 1, 25)
    }
    curves["diverged"] = []
    out = sweep_pictures.plot_overlaid_curves(curves, tmp_path / "overlay.png", title="sweep")
    assert png_size(out) == (900, 500)


def test_plot_overlaid_curves_of_a_few_runs(tmp_path: Path) -> None:
    curves = {"a": [(1, 0.3), (2, 0.2)], "b": [(1, 0.4), (2, float("nan"))]}
    out = sweep_pictures.plot_overlaid_curves(curves, tmp_path / "overlay.png", ylabel="test loss")
    assert png_size(out) == (900, 500)


def test_plot_overlaid_curves_rejects_no_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="curves is empty"):
        sweep_pictures.plot_overlaid_curves({}, tmp_path / "overlay.png")


def test_plot_overlaid_curves_rejects_points_that_are_not_pairs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"curves\['a'\] must be a sequence of \(epoch, value\)"):
        sweep_pictures.plot_overlaid_curves({"a": [(1, 0.3, 9)]}, tmp_path / "overlay.png")  # type: ignore[list-item]


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
    rgb = pixels(sweep_pictures.plot_sweep_heatmap(df, tmp_path / "sweep.png"))
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
    rgb = pixels(sweep_pictures.plot_sweep_heatmap(df, tmp_path / "sweep.png"))
    x0, y0, w, h = TWO_BOX
    centre = rgb[y0 + h * 3 // 4 - 6 : y0 + h * 3 // 4 + 6, x0 + w // 6 - 20 : x0 + w // 6 + 20]
    assert near(centre, (255, 255, 255), tol=40).sum() > 10  # "0.051" on dark purple


def test_plot_sweep_heatmap_leaves_blanks_white_and_writes_nan(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5, 1.0], [10, 50, 100], [5, 10])
    df = df.drop(index=[0, 5]).reset_index(drop=True)  # no runs: (lr 0.01, b 10, 5 epochs)
    df.loc[3, "test/error"] = np.nan  # and (0.01, 100, 10); diverged: (0.01, 100, 5)
    rgb = pixels(sweep_pictures.plot_sweep_heatmap(df, tmp_path / "sweep.png"))
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
    rgb = pixels(sweep_pictures.plot_sweep_heatmap(df, tmp_path / "sweep.png"))
    left, right = (98, 70, 280, 200), (488, 70, 280, 200)
    top = cell(rgb, right, (3, 4), 0, 0)
    assert np.abs(top - VIRIDIS[255]).max() <= 4
    np.testing.assert_array_equal(cell(rgb, left, (3, 4), 2, 3), top)  # the same value


def test_plot_sweep_heatmap_bars_grow_with_the_value_and_nan_draws_none(tmp_path: Path) -> None:
    df = pd.DataFrame({"optim.lr": [0.01, 0.1, 0.5, 1.0], "test/error": [0.1, 0.3, np.nan, 0.2]})
    rgb = pixels(sweep_pictures.plot_sweep_heatmap(df, tmp_path / "sweep.png"))
    bar = near(rgb, TAB10[0], tol=10)  # (420, 500)
    columns = np.flatnonzero(bar.sum(axis=0) > 20)
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    assert len(runs) == 3  # no bar for the nan
    heights = [int(bar[:, r].sum(axis=0).max()) for r in runs]
    assert heights[0] * 3 == pytest.approx(heights[1], abs=3)
    assert heights[0] * 2 == pytest.approx(heights[2], abs=3)


def flat_curves(n: int) -> dict[str, list[tuple[int, float]]]:
    """n runs, run k flat at 0.1·(k + 1) over 5 epochs, listed worst first."""
    return {f"run {k}": [(e, 0.1 * (k + 1)) for e in range(1, 6)] for k in reversed(range(n))}


def test_plot_overlaid_curves_colours_runs_apart_best_lowest_in_c0(tmp_path: Path) -> None:
    rgb = pixels(sweep_pictures.plot_overlaid_curves(flat_curves(3), tmp_path / "c.png"))
    plot = rgb[20:445, 75:635]  # the axes
    rows = []
    for colour in TAB10[:3]:
        where = near(plot, colour, tol=10)
        assert where.sum() > 500, colour
        rows.append(np.flatnonzero(where.any(axis=1)).mean())
    assert rows[0] > rows[1] > rows[2]  # C0 the lowest line (lowest value), then C1, C2


def test_plot_overlaid_curves_of_27_runs_colours_each_by_rank(tmp_path: Path) -> None:
    rgb = pixels(
        sweep_pictures.plot_overlaid_curves(flat_curves(27), tmp_path / "c.png", title="t")
    )
    plot = rgb[40:445, 75:635]
    rows = []
    for rank in range(27):
        colour = tuple(VIRIDIS[min(int(0.9 * rank / 26 * 256), 255)].tolist())
        where = (plot == colour).all(axis=-1)  # each line's own colour, exactly
        assert where.sum() > 500, rank
        rows.append(np.flatnonzero(where.any(axis=1)).mean())
    assert (np.diff(rows) < 0).all()  # the darkest lowest, by rank


def legend_colours(rgb: NDArray[np.int64]) -> int:
    """How many line colours the legend's samples show (right of the axes)."""
    samples = rgb[20:445, 655:680].reshape(-1, 3)
    coloured = samples[np.ptp(samples, axis=1) > 40]  # not grey
    return len(np.unique(coloured, axis=0))


def test_plot_overlaid_curves_legend_shows_max_legend_runs(tmp_path: Path) -> None:
    curves = flat_curves(12)
    few = pixels(sweep_pictures.plot_overlaid_curves(curves, tmp_path / "a.png", max_legend=5))
    every = pixels(sweep_pictures.plot_overlaid_curves(curves, tmp_path / "b.png"))
    none = pixels(sweep_pictures.plot_overlaid_curves(curves, tmp_path / "c.png", max_legend=0))
    assert legend_colours(few) < legend_colours(every)
    assert legend_colours(none) == 0 and (none[:, 640:] == 255).all()


# ---------------------------------------------------------------------------------------------
# determinism and isolation


def test_same_inputs_give_the_same_bytes_and_different_inputs_differ(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5, 1.0], [10, 50, 100], [5, 10])
    other = df.assign(**{"test/error": df["test/error"] * 2})
    bars = sweep_frame([0.01, 0.1, 0.5], [100], [10])
    pairs = {
        "heatmap": (
            lambda p: sweep_pictures.plot_sweep_heatmap(df, p),
            lambda p: sweep_pictures.plot_sweep_heatmap(other, p),
        ),
        "bars": (
            lambda p: sweep_pictures.plot_sweep_heatmap(bars, p),
            lambda p: sweep_pictures.plot_sweep_heatmap(bars.assign(**{"test/error": 0.5}), p),
        ),
        "curves": (
            lambda p: sweep_pictures.plot_overlaid_curves(flat_curves(27), p),
            lambda p: sweep_pictures.plot_overlaid_curves(flat_curves(26), p),
        ),
    }
    for name, (draw_a, draw_b) in pairs.items():
        first = draw_a(tmp_path / f"{name}_a1.png").read_bytes()
        other_bytes = draw_b(tmp_path / f"{name}_b.png").read_bytes()
        again = draw_a(tmp_path / f"{name}_a2.png").read_bytes()
        assert again == first, name
        assert other_bytes != first, name


def test_drawing_sweep_pictures_never_imports_matplotlib(tmp_path: Path) -> None:
    code = f"""
import sys
import pandas as pd
from softmax_lab.pictures import sweep_pictures
df = pd.DataFrame({{"a": [1, 2, 1, 2], "b": [1, 1, 2, 2], "m": [0.1, 0.2, 0.3, 0.4]}})
sweep_pictures.plot_sweep_heatmap(df, {str(tmp_path / "h.png")!r}, metric="m")
sweep_pictures.plot_sweep_heatmap(df[df["b"] == 1], {str(tmp_path / "b.png")!r}, metric="m")
sweep_pictures.plot_overlaid_curves({{"a": [(1, 0.3), (2, 0.2)]}}, {str(tmp_path / "c.png")!r})
assert "matplotlib" not in sys.modules, "matplotlib imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
