from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.pictures import history, near, pixels, png_size

from softmax_lab.pictures import curves

TRAIN_RGB, TEST_RGB, VAL_RGB = (31, 119, 180), (255, 127, 14), (44, 160, 44)


# ---------------------------------------------------------------------------------------------
# learning curves


def test_plot_curves_writes_a_1000x400_png(tmp_path: Path) -> None:
    out = curves.plot_curves(history(), tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    assert png_size(out) == (1000, 400)


def test_plot_curves_accepts_a_str_path(tmp_path: Path) -> None:
    out = curves.plot_curves(history(), str(tmp_path / "curves.png"))
    assert isinstance(out, Path) and png_size(out) == (1000, 400)


def test_plot_curves_draws_train_and_test_in_their_colours_in_both_panels(tmp_path: Path) -> None:
    rgb = pixels(curves.plot_curves(history(), tmp_path / "curves.png"))
    for panel in (rgb[:, :500], rgb[:, 500:]):  # loss, error
        assert near(panel, TRAIN_RGB).sum() > 300
        assert near(panel, TEST_RGB).sum() > 300


def test_plot_curves_draws_the_validation_curves_when_the_run_has_them(tmp_path: Path) -> None:
    rows = [
        {**row, "val_loss": row["test_loss"] * 0.8, "val_error": row["test_error"] * 0.7}
        for row in history()
    ]
    rgb = pixels(curves.plot_curves(rows, tmp_path / "val.png"))
    plain = pixels(curves.plot_curves(history(), tmp_path / "plain.png"))
    for panel, without in ((rgb[:, :500], plain[:, :500]), (rgb[:, 500:], plain[:, 500:])):
        assert near(panel, VAL_RGB).sum() > 300
        assert near(panel, TRAIN_RGB).sum() > 300 and near(panel, TEST_RGB).sum() > 300
        assert near(without, VAL_RGB).sum() == 0  # no validation split: no green at all


def test_plot_curves_of_one_epoch_with_a_title_draws_its_markers(tmp_path: Path) -> None:
    out = curves.plot_curves(history(1), tmp_path / "curves.png", title="run 3f2a")
    assert png_size(out) == (1000, 400)
    nan = float("nan")
    legend_only = [{"epoch": 1, **dict.fromkeys(curves.HISTORY_KEYS[1:], nan)}]
    blank = pixels(curves.plot_curves(legend_only, tmp_path / "blank.png", title="run 3f2a"))
    rgb = pixels(out)
    for colour in (TRAIN_RGB, TEST_RGB):  # a marker of ~25 px in each panel
        assert near(rgb[:, :500], colour).sum() - near(blank[:, :500], colour).sum() > 15
        assert near(rgb[:, 500:], colour).sum() - near(blank[:, 500:], colour).sum() > 15


def test_plot_curves_leaves_a_gap_at_a_non_finite_value(tmp_path: Path) -> None:
    rows = history(6)
    rows[2]["test_loss"] = float("nan")
    rows[3]["test_loss"] = float("inf")
    gapped = pixels(curves.plot_curves(rows, tmp_path / "gap.png"))
    whole = pixels(curves.plot_curves(history(6), tmp_path / "whole.png"))
    lost = near(whole[:, :500], TEST_RGB).sum() - near(gapped[:, :500], TEST_RGB).sum()
    assert lost > 100  # two points, their markers and the three segments around them
    np.testing.assert_array_equal(gapped[:, 500:], whole[:, 500:])  # the error panel is intact


def test_plot_curves_of_an_all_nan_series_draws_the_other(tmp_path: Path) -> None:
    rows = [{**row, "test_loss": float("nan")} for row in history(4)]
    rgb = pixels(curves.plot_curves(rows, tmp_path / "curves.png"))
    assert near(rgb[:, :500], TRAIN_RGB).sum() > 300


def test_plot_curves_rejects_empty_history(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="history is empty"):
        curves.plot_curves([], tmp_path / "curves.png")


def test_plot_curves_names_the_missing_key(tmp_path: Path) -> None:
    rows = history(3)
    del rows[1]["test_error"]
    with pytest.raises(ValueError, match=r"history\[1\] lacks 'test_error'; each epoch needs"):
        curves.plot_curves(rows, tmp_path / "curves.png")
