"""softmax_lab.review.sweep_report: the sweep's files, of the metric asked for."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from softmax_lab.review.sweep_report import PER_EPOCH, REPORT_FILES, write_sweep_report


def test_per_epoch_metrics_are_the_logged_ones_but_wall_time() -> None:
    assert PER_EPOCH == (
        "train/loss",
        "train/error",
        "val/loss",
        "val/error",
        "test/loss",
        "test/error",
    )


def test_a_report_of_another_per_epoch_metric_writes_every_file(
    cmp_store: str, cmp_frame: pd.DataFrame, tmp_path: Path
) -> None:
    paths = write_sweep_report(cmp_store, cmp_frame, tmp_path, metric="train/loss")
    assert [p.name for p in paths] == list(REPORT_FILES)
    assert all(p.stat().st_size > 0 for p in paths)


def test_a_report_of_a_metric_no_run_logged_draws_nan_cells(
    cmp_store: str, cmp_frame: pd.DataFrame, tmp_path: Path
) -> None:
    # runs without a validation split: val/error is missing everywhere, not an error
    paths = write_sweep_report(cmp_store, cmp_frame, tmp_path, metric="val/error")
    assert [p.name for p in paths] == list(REPORT_FILES)


def test_a_report_rejects_a_metric_not_logged_per_epoch(
    cmp_store: str, cmp_frame: pd.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"metric must be one of train/loss, .*, got 'seconds'"):
        write_sweep_report(cmp_store, cmp_frame, tmp_path, metric="seconds")
