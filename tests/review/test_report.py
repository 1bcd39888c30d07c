"""softmax_lab.review.report on frames read back from a real SQLite MLflow store."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pandas as pd
import pytest

from softmax_lab.review.report import (
    compare_runs,
    compare_table,
    default_sort,
    format_table,
    ranked_runs,
)
from softmax_lab.tracking.reading import runs_frame


def test_compare_table_is_best_first_with_failed_runs_last(cmp_frame: pd.DataFrame) -> None:
    table = compare_table(cmp_frame)
    assert list(table["name"]) == ["lr=0.05 B=100", "lr=0.1 B=50", "lr=0.2 B=100", "lr=0.5 B=50"]
    assert list(table["status"]) == ["FINISHED", "FINISHED", "FINISHED", "FAILED"]
    assert list(table["test/error"]) == pytest.approx([0.10, 0.20, 0.30, 0.01])
    assert table["run"].str.len().eq(8).all()
    assert set(table["run"]) == {r[:8] for r in cmp_frame["run_id"]}


def test_compare_table_shows_only_the_params_that_vary(cmp_frame: pd.DataFrame) -> None:
    table = compare_table(cmp_frame)
    assert list(table.columns) == [
        "run",
        "name",
        "status",
        "optim.lr",
        "optim.batch_size",
        "train/loss",
        "train/error",
        "test/loss",
        "test/error",
        "seconds",
    ]
    assert pd.api.types.is_float_dtype(table["optim.lr"])
    assert pd.api.types.is_integer_dtype(table["optim.batch_size"])
    assert (table["seconds"] >= 0).all()


def test_compare_table_shows_default_params_when_none_varies(cmp_frame: pd.DataFrame) -> None:
    table = compare_table(cmp_frame.iloc[:1])
    assert list(table.columns[3:6]) == ["optim.lr", "optim.batch_size", "optim.epochs"]


def test_compare_table_sorts_numeric_params_as_numbers(cmp_frame: pd.DataFrame) -> None:
    table = compare_table(cmp_frame, sort="optim.lr")
    assert list(table["optim.lr"]) == [0.05, 0.1, 0.2, 0.5]  # as strings "0.5" < "0.05" fails


def test_compare_table_top_n(cmp_frame: pd.DataFrame) -> None:
    table = compare_table(cmp_frame, top=2)
    assert list(table["test/error"]) == pytest.approx([0.10, 0.20])
    with pytest.raises(ValueError, match="top must be >= 1, got 0"):
        compare_table(cmp_frame, top=0)


def test_compare_table_rejects_an_unknown_sort_column(cmp_frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"sort must be one of name, optim.lr, .*got 'accuracy'"):
        compare_table(cmp_frame, sort="accuracy")


def test_compare_table_of_no_runs(cmp_store: str) -> None:
    table = compare_table(runs_frame(cmp_store, "cmp", sweep_id="none"))
    assert table.empty
    assert "test/error" in table.columns
    assert format_table(table, "table").split() == list(table.columns)


def test_compare_runs_reads_the_store(cmp_store: str) -> None:
    table = compare_runs(cmp_store, "cmp", top=1)
    assert list(table["name"]) == ["lr=0.05 B=100"]


def test_format_csv_reads_back_to_the_same_values(cmp_frame: pd.DataFrame) -> None:
    table = compare_table(cmp_frame)
    back = pd.read_csv(io.StringIO(format_table(table, "csv")))
    assert list(back.columns) == list(table.columns)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)


def test_format_markdown_has_a_header_separator(cmp_frame: pd.DataFrame) -> None:
    table = compare_table(cmp_frame)
    lines = format_table(table, "markdown").splitlines()
    assert len(lines) == 2 + len(cmp_frame)
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == list(table.columns)
    rule = [c.strip() for c in lines[1].strip("|").split("|")]
    assert all(re.fullmatch(r"-{3,}:?", c) for c in rule)
    assert rule[header.index("name")].endswith("-")  # text left-aligned
    assert rule[header.index("test/error")].endswith(":")  # numbers right-aligned
    assert len({len(line) for line in lines}) == 1  # padded: the raw text lines up too
    first = [c.strip() for c in lines[2].strip("|").split("|")]
    assert first[header.index("optim.lr")] == "0.05"
    assert first[header.index("test/error")] == "0.1"


def test_format_table_is_aligned_text(cmp_frame: pd.DataFrame) -> None:
    text = format_table(compare_table(cmp_frame), "table")
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["run", "name", "status"]
    assert len(lines) == 1 + len(cmp_frame)
    assert "0.05" in lines[1]


def test_format_table_rejects_an_unknown_format(cmp_frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="fmt must be one of table, csv, markdown, got 'html'"):
        format_table(compare_table(cmp_frame), "html")


def test_report_does_not_import_mlflow() -> None:
    code = "import sys, softmax_lab.review.report; print('mlflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# --- sort on columns the table does not show, ranked_runs, name truncation --------------------


def test_compare_table_sorts_by_a_param_it_does_not_show(cmp_frame: pd.DataFrame) -> None:
    table = compare_table(cmp_frame, sort="optim.epochs")  # the same for all: the order stays
    assert "optim.epochs" not in table.columns
    assert list(table["status"]) == ["FINISHED"] * 3 + ["FAILED"]


def test_compare_table_sorts_by_any_logged_metric(cmp_frame: pd.DataFrame) -> None:
    timed = cmp_frame.assign(**{"metrics.epoch_seconds": [3.0, 1.0, 2.0, 0.5]})
    table = compare_table(timed, sort="epoch_seconds")
    expected = timed[timed["status"] == "FINISHED"].sort_values("metrics.epoch_seconds")
    assert list(table["name"]) == [
        *expected["run_name"],
        *timed.loc[timed["status"] == "FAILED", "run_name"],
    ]
    with pytest.raises(ValueError, match=r"sort must be one of .*optim.epochs.*epoch_seconds"):
        compare_table(cmp_frame, sort="nope")


def test_ranked_runs_are_the_rows_the_table_shows(cmp_frame: pd.DataFrame) -> None:
    table = compare_table(cmp_frame, sort="train/loss", top=3)
    runs = ranked_runs(cmp_frame, sort="train/loss", top=3)
    assert list(runs["run_id"].str[:8]) == list(table["run"])
    assert list(runs.columns) == list(cmp_frame.columns)


def test_format_table_shortens_long_names_in_table_format_only(cmp_frame: pd.DataFrame) -> None:
    long = "optim.lr=0.05 optim.batch_size=50 optim.epochs=2 model=mlp model.hidden_dim=16"
    table = compare_table(cmp_frame).assign(name=long)
    text = format_table(table, "table")
    assert long[:39] + "…" in text and long not in text
    assert long in format_table(table, "csv") and long in format_table(table, "markdown")


def test_seconds_is_the_runs_own_training_time_when_tagged(cmp_frame: pd.DataFrame) -> None:
    # a fused run's wall time spans its whole group; its sl.train_seconds is its own share
    tagged = cmp_frame.assign(**{"tags.sl.train_seconds": ["0.25", "1.5", None, "0.75"]})
    table = compare_table(tagged).set_index("run")
    shares = dict(zip(tagged["run_id"].str[:8], tagged["tags.sl.train_seconds"], strict=True))
    wall = compare_table(cmp_frame).set_index("run")["seconds"]
    for run, share in shares.items():
        expected = wall[run] if pd.isna(share) else float(share)
        assert table.loc[run, "seconds"] == pytest.approx(expected)


# --- runs flagged exploded ----------------------------------------------------------------------


def _exploded(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """``frame`` with the run named ``name`` tagged as the job tags a run that exploded."""
    flags = ["true" if n == name else None for n in frame["run_name"]]
    return frame.assign(**{"tags.sl.exploded": flags})


def test_an_exploded_run_is_flagged_and_ranked_after_the_runs_that_learned(
    cmp_frame: pd.DataFrame,
) -> None:
    table = compare_table(_exploded(cmp_frame, "lr=0.05 B=100"))  # the best test error
    assert list(table["name"]) == ["lr=0.1 B=50", "lr=0.2 B=100", "lr=0.05 B=100", "lr=0.5 B=50"]
    assert list(table.columns[:4]) == ["run", "name", "status", "flag"]
    assert table["flag"].fillna("").tolist() == ["", "", "exploded", ""]
    assert list(table["status"]) == ["FINISHED", "FINISHED", "FINISHED", "FAILED"]
    by_lr = compare_table(_exploded(cmp_frame, "lr=0.05 B=100"), sort="optim.lr")
    assert list(by_lr["optim.lr"]) == [0.1, 0.2, 0.05, 0.5]
    assert "flag" not in compare_table(cmp_frame).columns  # no run flagged: no column


def test_the_flag_shows_in_every_format(cmp_frame: pd.DataFrame) -> None:
    table = compare_table(_exploded(cmp_frame, "lr=0.2 B=100"))
    text = format_table(table, "table").splitlines()
    assert text[0].split()[:4] == ["run", "name", "status", "flag"]
    assert [line.split()[4] for line in text[1:]] == ["-", "-", "exploded", "-"]  # after B=…
    rows = list(pd.read_csv(io.StringIO(format_table(table, "csv")))["flag"].fillna(""))
    assert rows == ["", "", "exploded", ""]
    assert "| exploded |" in format_table(table, "markdown")


# --- runs with a validation split ---------------------------------------------------------------


def _validated(frame: pd.DataFrame, errors: list[float | None]) -> pd.DataFrame:
    """``frame`` with final val/loss and val/error as runs with a validation split log them."""
    val = pd.Series(errors, dtype=float)
    return frame.assign(**{"metrics.val/error": val.to_numpy(), "metrics.val/loss": 2 * val})


def test_val_columns_show_between_train_and_test_and_sort(cmp_frame: pd.DataFrame) -> None:
    # the run with the best test error has the worst validation error
    frame = _validated(cmp_frame, [0.3, 0.1, 0.2, 0.05])
    by_test = cmp_frame.set_index("run_name")["metrics.test/error"]
    table = compare_table(frame, sort="val/error")
    columns = list(table.columns)
    assert columns[columns.index("train/error") + 1 : columns.index("test/loss")] == [
        "val/loss",
        "val/error",
    ]
    finished = table[table["status"] == "FINISHED"]
    assert list(finished["val/error"]) == sorted(finished["val/error"])
    assert list(table["status"])[-1] == "FAILED"  # a FAILED run stays last, whatever its value
    assert by_test[table["name"].iloc[0]] != by_test.min()  # not the test set's choice
    assert "val/error" not in compare_table(cmp_frame).columns  # no split: no val columns


def test_default_sort_is_val_error_only_when_every_finished_run_has_a_split(
    cmp_frame: pd.DataFrame,
) -> None:
    assert default_sort(cmp_frame) == "test/error"
    finished = cmp_frame["status"] == "FINISHED"
    every = [0.1 if f else None for f in finished]  # a FAILED run without: it ranks last anyway
    assert default_sort(_validated(cmp_frame, every)) == "val/error"
    one_missing = [None if i == int(finished.to_numpy().argmax()) else 0.1 for i in range(4)]
    assert default_sort(_validated(cmp_frame, one_missing)) == "test/error"
