"""review.diff (``compare --diff``) on frames read back from a real SQLite MLflow store."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from softmax_lab.review.diff import diff_runs, format_diff, select_run
from softmax_lab.review.report import METRICS

# --- select_run, diff_runs, format_diff --------------------------------------------------------


def test_select_run_by_full_id_or_prefix(cmp_frame: pd.DataFrame) -> None:
    run_id = cmp_frame["run_id"].iloc[2]
    assert select_run(cmp_frame, run_id)["run_id"] == run_id
    assert select_run(cmp_frame, run_id[:8])["run_id"] == run_id


def test_select_run_rejects_unknown_ambiguous_and_empty_ids(cmp_frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no run with id 'zzzzzzzz' among these 4 runs"):
        select_run(cmp_frame, "zzzzzzzz")
    same_start = cmp_frame.assign(run_id=["abc1", "abc2", "d", "e"])
    with pytest.raises(ValueError, match="run id prefix 'abc' is ambiguous: it matches abc1, abc2"):
        select_run(same_start, "abc")
    with pytest.raises(ValueError, match="run id must not be empty"):
        select_run(cmp_frame, " ")


def test_diff_runs_lists_differing_params_and_final_metrics(cmp_frame: pd.DataFrame) -> None:
    by_name = cmp_frame.set_index("run_name", drop=False)
    a, b = by_name.loc["lr=0.05 B=100"], by_name.loc["lr=0.1 B=50"]
    diff = diff_runs(a, b)
    assert diff.a.startswith(a["run_id"][:8]) and "lr=0.05 B=100 (FINISHED)" in diff.a
    assert diff.params.to_dict("records") == [
        {"key": "optim.lr", "A": "0.05", "B": "0.1"},
        {"key": "optim.batch_size", "A": "100", "B": "50"},
    ]
    assert list(diff.metrics["metric"]) == [*METRICS, "epoch_seconds"]
    row = diff.metrics.set_index("metric").loc["test/error"]
    # two epochs, final test error = err * 2 / 2
    assert (row["A"], row["B"], row["B-A"]) == pytest.approx((0.10, 0.20, 0.10))


def test_diff_runs_of_a_run_with_itself_is_empty(cmp_frame: pd.DataFrame) -> None:
    row = cmp_frame.iloc[0]
    diff = diff_runs(row, row)
    assert diff.params.empty
    assert (diff.metrics["B-A"] == 0).all()
    assert "(none: every param is the same)" in format_diff(diff)


def test_format_diff_table_markdown_and_csv(cmp_frame: pd.DataFrame) -> None:
    diff = diff_runs(cmp_frame.iloc[0], cmp_frame.iloc[1])
    text = format_diff(diff, "table")
    assert text.splitlines()[0] == f"A: {diff.a}"
    assert "params that differ:" in text and "final metrics:" in text
    assert "B-A" in text and "optim.lr" in text
    assert "**final metrics:**" in format_diff(diff, "markdown")
    back = pd.read_csv(io.StringIO(format_diff(diff, "csv")))
    assert list(back.columns) == ["section", "key", "A", "B", "B-A"]
    assert set(back["section"]) == {"param", "metric"}
    with pytest.raises(ValueError, match="fmt must be one of"):
        format_diff(diff, "html")
