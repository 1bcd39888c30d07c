from __future__ import annotations

import struct
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
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


@pytest.fixture(autouse=True)
def fresh_figures() -> Iterator[None]:
    """Each test starts without reused figures, so none depends on another's draws."""
    plots._PICTURES.clear()
    yield
    plots._PICTURES.clear()


# ---------------------------------------------------------------------------------------------
# learning curves


def test_plot_curves_writes_a_1000x400_png(tmp_path: Path) -> None:
    out = plots.plot_curves(history(), tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    assert png_size(out) == (1000, 400)


def test_plot_curves_with_title_and_one_epoch_keeps_the_size(tmp_path: Path) -> None:
    out = plots.plot_curves(history(1), tmp_path / "curves.png", title="run 3f2a")
    assert png_size(out) == (1000, 400)


def test_plot_curves_accepts_a_str_path(tmp_path: Path) -> None:
    out = plots.plot_curves(history(), str(tmp_path / "curves.png"))
    assert isinstance(out, Path) and png_size(out) == (1000, 400)


def test_plot_curves_rejects_empty_history(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="history is empty"):
        plots.plot_curves([], tmp_path / "curves.png")


def test_plot_curves_names_the_missing_key(tmp_path: Path) -> None:
    rows = history(3)
    del rows[1]["test_error"]
    with pytest.raises(ValueError, match=r"history\[1\] lacks 'test_error'; each epoch needs"):
        plots.plot_curves(rows, tmp_path / "curves.png")


# ---------------------------------------------------------------------------------------------
# tile_images


def test_tile_images_grid_shape_with_padding_between_tiles_only() -> None:
    tiled = plots.tile_images(np.zeros((784, 10)), ncols=5)
    assert tiled.shape == (2 * 28 + 1, 5 * 28 + 4)
    assert tiled.dtype == np.float64


def test_tile_images_reshapes_each_column_row_major_into_its_tile() -> None:
    n, c = 6, 5  # 2×3 images, 3 per grid row: tiles (0,0) (0,1) (0,2) (1,0) (1,1), one unused
    W = np.zeros((n, c))
    W[:, 4] = np.arange(1, 7)  # column 4: grid row 1, grid column 1
    tiled = plots.tile_images(W, shape=(2, 3), ncols=3, pad=1)
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
    tiled = plots.tile_images(W, ncols=5)
    top, left = 1 * 29, 2 * 29
    np.testing.assert_array_equal(tiled[top : top + 28, left : left + 28], pattern)
    assert np.nansum(tiled) == pattern.sum()


def test_tile_images_with_zero_pad_and_zero_fill() -> None:
    W = np.arange(12.0).reshape(4, 3)  # three 2×2 images
    tiled = plots.tile_images(W, shape=(2, 2), ncols=2, pad=0, fill=0.0)
    assert tiled.shape == (4, 4)
    np.testing.assert_array_equal(tiled[:2, 2:], W[:, 1].reshape(2, 2))
    np.testing.assert_array_equal(tiled[2:, 2:], 0.0)


def test_tile_images_uses_at_most_c_columns() -> None:
    assert plots.tile_images(np.zeros((784, 3)), ncols=5).shape == (28, 3 * 28 + 2)


def test_tile_images_names_expected_and_given_n() -> None:
    with pytest.raises(ValueError, match=r"W has n=780 rows but shape=\(28, 28\) needs h\*w=784"):
        plots.tile_images(np.zeros((780, 10)), ncols=5)


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
        plots.tile_images(W, **{"ncols": 5, **kwargs})


# ---------------------------------------------------------------------------------------------
# templates


def test_plot_templates_theta_is_800_wide_and_as_tall_as_its_grid(tmp_path: Path) -> None:
    theta = np.random.default_rng(0).standard_normal((784, 10)).astype(np.float32)
    out = plots.plot_templates(theta, tmp_path / "theta.png", titles=[str(i) for i in range(10)])
    # grid 57×144 px drawn 700 px wide: 277 px tall, plus 10 px margins
    assert png_size(out) == (800, 297)


def test_plot_templates_w1_hidden_units_with_title(tmp_path: Path) -> None:
    W1 = np.random.default_rng(0).standard_normal((784, 16))
    titles = [f"h{i}" for i in range(16)]
    out = plots.plot_templates(W1, tmp_path / "W1.png", titles=titles, ncols=8, title="W1")
    # grid 57×231 px drawn 700 px wide: 173 px tall, plus 10 + 34 px for the title
    assert png_size(out) == (800, 217)


def test_plot_templates_of_all_zero_theta(tmp_path: Path) -> None:
    out = plots.plot_templates(np.zeros((784, 10)), tmp_path / "theta.png")
    assert png_size(out) == (800, 297)


def test_plot_templates_non_square_n_falls_back_to_a_heatmap(tmp_path: Path) -> None:
    W = np.random.default_rng(0).standard_normal((700, 10))
    out = plots.plot_templates(W, tmp_path / "theta.png")
    assert png_size(out) == (800, 45 + 180 + 10)


def test_plot_templates_one_row_shape_draws_the_heatmap(tmp_path: Path) -> None:
    W = np.random.default_rng(0).standard_normal((700, 10))
    out = plots.plot_templates(W, tmp_path / "theta.png", shape=(1, 700))
    assert png_size(out) == (800, 45 + 180 + 10)


def test_plot_templates_takes_an_explicit_rectangular_shape(tmp_path: Path) -> None:
    W = np.random.default_rng(0).standard_normal((20 * 30, 4))
    out = plots.plot_templates(W, tmp_path / "t.png", shape=(20, 30), ncols=4)
    # grid 20×123 px drawn 700 px wide: 114 px tall
    assert png_size(out) == (800, 134)


def test_plot_templates_rejects_wrong_number_of_titles(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="got 3 titles for the 10 columns of W"):
        plots.plot_templates(np.zeros((784, 10)), tmp_path / "t.png", titles=["a", "b", "c"])


def test_plot_templates_rejects_a_shape_that_does_not_match_n(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"W has n=784 rows but shape=\(20, 30\) needs"):
        plots.plot_templates(np.zeros((784, 10)), tmp_path / "t.png", shape=(20, 30))


# ---------------------------------------------------------------------------------------------
# confusion matrix


def test_confusion_matrix_equals_a_hand_count() -> None:
    y_true = np.array([0, 0, 1, 2, 2, 2, 1])
    y_pred = np.array([0, 1, 1, 2, 0, 2, 1])
    cm = plots.confusion_matrix(y_true, y_pred, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 2]])
    assert cm.dtype == np.int64


def test_confusion_matrix_of_uint8_labels_does_not_overflow() -> None:
    y = np.array([29, 29, 3], dtype=np.uint8)  # 29·30 + 29 = 899 > 255
    cm = plots.confusion_matrix(y, y, 30)
    assert cm[29, 29] == 2 and cm[3, 3] == 1 and cm.sum() == 3


def test_confusion_matrix_of_no_examples_is_zeros() -> None:
    np.testing.assert_array_equal(plots.confusion_matrix([], [], 4), np.zeros((4, 4)))


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
        plots.confusion_matrix(np.asarray(y_true), np.asarray(y_pred), k)


def test_plot_confusion_writes_a_600x520_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cm = plots.confusion_matrix(rng.integers(0, 10, 1000), rng.integers(0, 10, 1000), 10)
    assert png_size(plots.plot_confusion(cm, tmp_path / "cm.png")) == (600, 520)
    raw = plots.plot_confusion(cm, tmp_path / "raw.png", normalize=False, title="counts")
    assert png_size(raw) == (600, 520)


def test_plot_confusion_with_an_empty_class_and_many_classes(tmp_path: Path) -> None:
    cm = np.diag(np.arange(25))  # class 0 never occurs: its row is all zeros
    out = plots.plot_confusion(cm, tmp_path / "cm.png", labels=[f"c{i}" for i in range(25)])
    assert png_size(out) == (600, 520)


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
        plots.plot_confusion(cm, tmp_path / "cm.png")


def test_plot_confusion_rejects_wrong_number_of_labels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="got 2 labels for a 3×3 matrix"):
        plots.plot_confusion(np.eye(3, dtype=int), tmp_path / "cm.png", labels=["a", "b"])


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
# determinism, reuse and isolation


def test_a_reused_figure_draws_the_same_bytes_as_a_fresh_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    theta_a, theta_b = rng.standard_normal((784, 10)), 3 * rng.standard_normal((784, 10))
    cm_a, cm_b = rng.integers(0, 100, (10, 10)), rng.integers(0, 5000, (10, 10))
    pairs = {
        "curves": (partial(plots.plot_curves, history(10)), partial(plots.plot_curves, history(3))),
        "theta": (partial(plots.plot_templates, theta_a), partial(plots.plot_templates, theta_b)),
        "cm": (partial(plots.plot_confusion, cm_a), partial(plots.plot_confusion, cm_b)),
    }
    for name, (draw_a, draw_b) in pairs.items():
        plots._PICTURES.clear()
        first = draw_a(tmp_path / f"{name}_a1.png").read_bytes()  # builds the figure
        draw_b(tmp_path / f"{name}_b.png")  # reuses it with other data
        again = draw_a(tmp_path / f"{name}_a2.png").read_bytes()  # and once more
        assert again == first, name


def test_pictures_ignore_the_callers_matplotlib_style(tmp_path: Path) -> None:
    import matplotlib

    plain = plots.plot_curves(history(), tmp_path / "plain.png").read_bytes()
    plots._PICTURES.clear()
    style = {"lines.linewidth": 8, "axes.facecolor": "black", "font.size": 20}
    with matplotlib.rc_context(style):
        styled = plots.plot_curves(history(), tmp_path / "styled.png").read_bytes()
    assert styled == plain


def test_import_and_numpy_helpers_do_not_load_matplotlib_and_drawing_avoids_pyplot(
    tmp_path: Path,
) -> None:
    code = f"""
import sys
import numpy as np
import pandas as pd
from softmax_lab import plots
plots.tile_images(np.zeros((784, 3)), ncols=3)
plots.confusion_matrix([0, 1], [1, 1], 2)
plots.choose_axes(pd.DataFrame({{"a": [1, 2], "m": [0.1, 0.2]}}), "m")
assert "matplotlib" not in sys.modules, "matplotlib imported before drawing"
plots.plot_curves([{{"epoch": 1, "train_loss": 1, "train_error": 1, "test_loss": 1,
                    "test_error": 1}}], {str(tmp_path / "c.png")!r})
assert "matplotlib.pyplot" not in sys.modules, "pyplot imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
