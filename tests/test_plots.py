from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from softmax_lab import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the file is a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert len(data) > 1000, f"{path} is suspiciously small ({len(data)} bytes)"
    return width, height


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
    assert plots.choose_axes(df, "test/error") == ("optim.lr", "optim.batch_size", None)


def test_choose_axes_with_three_swept_params_facets_by_the_fewest() -> None:
    df = sweep_frame([0.01, 0.1, 0.5, 1.0], [10, 50, 100], [5, 10])
    assert plots.choose_axes(df) == ("optim.lr", "optim.batch_size", "optim.epochs")


def test_choose_axes_with_one_swept_param() -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [100], [10])
    assert plots.choose_axes(df, "test/error") == ("optim.lr", None, None)


def test_choose_axes_with_nothing_swept() -> None:
    assert plots.choose_axes(sweep_frame([0.1], [100], [10])) == (None, None, None)


def test_choose_axes_breaks_ties_in_column_order() -> None:
    df = sweep_frame([0.01, 0.1], [50, 100], [10])
    assert plots.choose_axes(df) == ("optim.lr", "optim.batch_size", None)
    assert plots.choose_axes(df[df.columns[::-1]]) == ("optim.batch_size", "optim.lr", None)


def test_choose_axes_counts_nan_as_a_value() -> None:
    df = pd.DataFrame(
        {"model.hidden_dim": [np.nan, 400.0], "model.name": ["softmax", "mlp"], "m": [0.1, 0.2]}
    )
    assert plots.choose_axes(df, "m") == ("model.hidden_dim", "model.name", None)


def test_choose_axes_only_considers_the_given_params() -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [50, 100], [10])
    df["run_id"] = [f"r{i}" for i in range(len(df))]
    assert plots.choose_axes(df, params=["optim.lr", "optim.batch_size"]) == (
        "optim.lr",
        "optim.batch_size",
        None,
    )


def test_choose_axes_rejects_more_than_three_swept_params() -> None:
    df = sweep_frame([0.01, 0.1], [50, 100], [5, 10])
    df["seed"] = range(len(df))
    with pytest.raises(ValueError, match=r"4 parameters are swept \(seed, .*pass params="):
        plots.choose_axes(df)


def test_choose_axes_rejects_a_missing_metric() -> None:
    with pytest.raises(ValueError, match=r"metric 'test/eror' is not a column of df"):
        plots.choose_axes(sweep_frame([0.1], [100], [10]), "test/eror")


def test_choose_axes_rejects_unknown_params() -> None:
    with pytest.raises(ValueError, match=r"params \['optim.lrr'\] are not parameter columns"):
        plots.choose_axes(sweep_frame([0.1], [100], [10]), params=["optim.lrr"])


def test_plot_sweep_heatmap_of_two_params(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [50, 100], [10])
    out = plots.plot_sweep_heatmap(df, tmp_path / "sweep.png")
    assert png_size(out) == (330 + 110, 290 + 40)  # one 3×2 panel and the colourbar


def test_plot_sweep_heatmap_facets_a_third_param_with_blanks_and_nan(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5, 1.0], [10, 50, 100], [5, 10])
    df = df.drop(index=[0, 5]).reset_index(drop=True)  # two missing combinations
    df.loc[3, "test/error"] = np.nan  # a diverged run
    out = plots.plot_sweep_heatmap(df, tmp_path / "sweep.png")
    assert png_size(out) == (2 * (280 + 110) + 110, 200 + 90 + 40)  # two 4×3 panels


def test_plot_sweep_heatmap_of_one_param_is_a_bar_chart(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [100], [10])
    assert png_size(plots.plot_sweep_heatmap(df, tmp_path / "sweep.png")) == (500, 420)


def test_plot_sweep_heatmap_of_nothing_swept_is_one_cell(tmp_path: Path) -> None:
    df = sweep_frame([0.1], [100], [10])
    assert png_size(plots.plot_sweep_heatmap(df, tmp_path / "sweep.png")) == (440, 330)


def test_plot_sweep_heatmap_sorts_mlflow_string_params_by_value(tmp_path: Path) -> None:
    df = sweep_frame([0.01, 0.1, 0.5], [50, 100], [10]).astype({"optim.lr": str})
    labels, _ = plots._levels(df, "optim.lr")
    assert labels == ["0.01", "0.1", "0.5"]
    assert png_size(plots.plot_sweep_heatmap(df, tmp_path / "sweep.png")) == (440, 330)


def test_plot_sweep_heatmap_rejects_an_empty_frame(tmp_path: Path) -> None:
    df = sweep_frame([0.1], [100], [10]).iloc[:0]
    with pytest.raises(ValueError, match="df has no rows"):
        plots.plot_sweep_heatmap(df, tmp_path / "sweep.png")


def test_plot_sweep_heatmap_rejects_a_non_numeric_metric(tmp_path: Path) -> None:
    df = sweep_frame([0.1, 0.2], [100], [10]).astype({"test/error": str})
    df.loc[0, "test/error"] = "diverged"
    with pytest.raises(ValueError, match="metric column 'test/error' must be numeric"):
        plots.plot_sweep_heatmap(df, tmp_path / "sweep.png")


def test_plot_overlaid_curves_caps_the_legend(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    curves = {
        f"optim.lr={lr:.3f}": [(e, float(v)) for e, v in enumerate(rng.random(10), start=1)]
        for lr in np.linspace(0.01, 1, 25)
    }
    curves["diverged"] = []
    out = plots.plot_overlaid_curves(curves, tmp_path / "overlay.png", title="sweep")
    assert png_size(out) == (900, 500)


def test_plot_overlaid_curves_of_a_few_runs(tmp_path: Path) -> None:
    curves = {"a": [(1, 0.3), (2, 0.2)], "b": [(1, 0.4), (2, float("nan"))]}
    out = plots.plot_overlaid_curves(curves, tmp_path / "overlay.png", ylabel="test loss")
    assert png_size(out) == (900, 500)


def test_plot_overlaid_curves_rejects_no_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="curves is empty"):
        plots.plot_overlaid_curves({}, tmp_path / "overlay.png")


def test_plot_overlaid_curves_rejects_points_that_are_not_pairs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"curves\['a'\] must be a sequence of \(epoch, value\)"):
        plots.plot_overlaid_curves({"a": [(1, 0.3, 9)]}, tmp_path / "overlay.png")  # type: ignore[list-item]


# ---------------------------------------------------------------------------------------------
# determinism and isolation


def test_pictures_ignore_the_callers_matplotlib_style(tmp_path: Path) -> None:
    import matplotlib

    curves = {"a": [(1, 0.3), (2, 0.2)], "b": [(1, 0.4), (2, 0.35)]}
    plain = plots.plot_overlaid_curves(curves, tmp_path / "plain.png").read_bytes()
    style = {"lines.linewidth": 8, "axes.facecolor": "black", "font.size": 20}
    with matplotlib.rc_context(style):
        styled = plots.plot_overlaid_curves(curves, tmp_path / "styled.png").read_bytes()
    assert styled == plain


def test_import_and_choose_axes_do_not_load_matplotlib_and_drawing_avoids_pyplot(
    tmp_path: Path,
) -> None:
    code = f"""
import sys
import pandas as pd
from softmax_lab import plots
plots.choose_axes(pd.DataFrame({{"a": [1, 2], "m": [0.1, 0.2]}}), "m")
assert "matplotlib" not in sys.modules, "matplotlib imported before drawing"
plots.plot_overlaid_curves({{"a": [(1, 0.3), (2, 0.2)]}}, {str(tmp_path / "c.png")!r})
assert "matplotlib.pyplot" not in sys.modules, "pyplot imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
