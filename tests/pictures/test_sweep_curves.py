from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.pictures import (
    assert_never_imports_matplotlib,
    assert_same_bytes_for_same_input,
    near,
    pixels,
    png_size,
)
from numpy.typing import NDArray

from softmax_lab.pictures import sweep_curves
from softmax_lab.pictures.raster import DRAWING, TAB10, VIRIDIS

# ---------------------------------------------------------------------------------------------
# overlaid curves


def test_plot_overlaid_curves_caps_the_legend(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    curves = {
        f"optim.lr={lr:.3f}": [(e, float(v)) for e, v in enumerate(rng.random(10), start=1)]
        for lr in np.linspace(0.01, 1, 25)
    }
    curves["diverged"] = []
    out = sweep_curves.plot_overlaid_curves(curves, tmp_path / "overlay.png", title="sweep")
    assert png_size(out) == (900, 500)


def test_plot_overlaid_curves_of_a_few_runs(tmp_path: Path) -> None:
    curves = {"a": [(1, 0.3), (2, 0.2)], "b": [(1, 0.4), (2, float("nan"))]}
    out = sweep_curves.plot_overlaid_curves(curves, tmp_path / "overlay.png", ylabel="test loss")
    assert png_size(out) == (900, 500)


def test_plot_overlaid_curves_rejects_no_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="curves is empty"):
        sweep_curves.plot_overlaid_curves({}, tmp_path / "overlay.png")


def test_plot_overlaid_curves_rejects_points_that_are_not_pairs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"curves\['a'\] must be a sequence of \(epoch, value\)"):
        sweep_curves.plot_overlaid_curves({"a": [(1, 0.3, 9)]}, tmp_path / "overlay.png")  # type: ignore[list-item]


# ---------------------------------------------------------------------------------------------
# what the pixels say


def flat_curves(n: int) -> dict[str, list[tuple[int, float]]]:
    """n runs, run k flat at 0.1·(k + 1) over 5 epochs, listed worst first."""
    return {f"run {k}": [(e, 0.1 * (k + 1)) for e in range(1, 6)] for k in reversed(range(n))}


def test_plot_overlaid_curves_colours_runs_apart_best_lowest_in_c0(tmp_path: Path) -> None:
    rgb = pixels(sweep_curves.plot_overlaid_curves(flat_curves(3), tmp_path / "c.png"))
    plot = rgb[20:445, 75:635]  # the axes
    rows = []
    for colour in TAB10[:3]:
        where = near(plot, colour, tol=10)
        assert where.sum() > 500, colour
        rows.append(np.flatnonzero(where.any(axis=1)).mean())
    assert rows[0] > rows[1] > rows[2]  # C0 the lowest line (lowest value), then C1, C2


def test_plot_overlaid_curves_of_27_runs_colours_each_by_rank(tmp_path: Path) -> None:
    rgb = pixels(sweep_curves.plot_overlaid_curves(flat_curves(27), tmp_path / "c.png", title="t"))
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
    few = pixels(sweep_curves.plot_overlaid_curves(curves, tmp_path / "a.png", max_legend=5))
    every = pixels(sweep_curves.plot_overlaid_curves(curves, tmp_path / "b.png"))
    none = pixels(sweep_curves.plot_overlaid_curves(curves, tmp_path / "c.png", max_legend=0))
    assert legend_colours(few) < legend_colours(every)
    assert legend_colours(none) == 0 and (none[:, 640:] == 255).all()


def test_draw_overlay_legend_shows_only_the_rows_that_fit() -> None:
    ranked = [(f"run {k}", np.array([[1.0, k], [2.0, k]])) for k in range(100)]
    with DRAWING:
        canvas, _ = sweep_curves.draw_overlay(ranked, ylabel="e", max_legend=100, title="")
        markers = np.asarray(canvas)[20:445, 666].astype(int)  # (425, 3): down the samples
    rows = np.flatnonzero(np.ptp(markers, axis=1) > 40)
    # rows of 12 px in the 425 px beside the axes: a heading and 34 runs
    assert len(np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)) == 34


# ---------------------------------------------------------------------------------------------
# determinism and isolation


def test_same_inputs_give_the_same_bytes_and_different_inputs_differ(tmp_path: Path) -> None:
    pairs = {
        "curves": (
            lambda p: sweep_curves.plot_overlaid_curves(flat_curves(27), p),
            lambda p: sweep_curves.plot_overlaid_curves(flat_curves(26), p),
        ),
    }
    assert_same_bytes_for_same_input(pairs, tmp_path)


def test_drawing_overlaid_curves_never_imports_matplotlib(tmp_path: Path) -> None:
    assert_never_imports_matplotlib(f"""
from softmax_lab.pictures import sweep_curves
sweep_curves.plot_overlaid_curves({{"a": [(1, 0.3), (2, 0.2)]}}, {str(tmp_path / "c.png")!r})
""")
