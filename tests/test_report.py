"""softmax_lab.report on frames read back from a real SQLite MLflow store."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pandas as pd
import pytest

from softmax_lab.config import Config, flatten
from softmax_lab.report import compare_runs, compare_table, format_table
from softmax_lab.tracking import RunRecorder, prepare_store, runs_frame
from softmax_lab.trainer import EpochMetrics

# (lr, batch size, final test error); "diverged" fails after one epoch with the best error
RUNS = [
    ("0.2", 100, 0.30),
    ("0.05", 100, 0.10),
    ("0.1", 50, 0.20),
    ("0.5", 50, None),
]


def log_run(
    uri: str, experiment_id: str, lr: str, batch: int, test_error: float | None, epochs: int = 2
) -> str:
    cfg = flatten(Config())
    cfg.update({"optim.lr": float(lr), "optim.batch_size": batch, "optim.epochs": epochs})
    rec = RunRecorder.start(uri, experiment_id, run_name=f"lr={lr} B={batch}", params=cfg, tags={})
    if test_error is None:  # diverged: one epoch logged, then FAILED
        rec.log_epoch(EpochMetrics(1, 9.0, 0.9, 9.0, 0.01, 0.1))
        rec.finish("FAILED", reason="training diverged")
        return rec.run_id
    for e in range(1, epochs + 1):
        rec.log_epoch(EpochMetrics(e, 1.0 / e, test_error / 2, 1.5 / e, test_error * 2 / e, 0.1))
    rec.finish()
    return rec.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store whose experiment ``cmp`` holds the four RUNS; returns its URI."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('report')}/mlflow.db"
    experiment_id = prepare_store(uri, "cmp")
    for lr, batch, err in RUNS:
        log_run(uri, experiment_id, lr, batch, err)
    return uri


@pytest.fixture(scope="module")
def frame(store: str) -> pd.DataFrame:
    return runs_frame(store, "cmp")


def test_compare_table_is_best_first_with_failed_runs_last(frame: pd.DataFrame) -> None:
    table = compare_table(frame)
    assert list(table["name"]) == ["lr=0.05 B=100", "lr=0.1 B=50", "lr=0.2 B=100", "lr=0.5 B=50"]
    assert list(table["status"]) == ["FINISHED", "FINISHED", "FINISHED", "FAILED"]
    assert list(table["test/error"]) == pytest.approx([0.10, 0.20, 0.30, 0.01])
    assert table["run"].str.len().eq(8).all()
    assert set(table["run"]) == {r[:8] for r in frame["run_id"]}


def test_compare_table_shows_only_the_params_that_vary(frame: pd.DataFrame) -> None:
    table = compare_table(frame)
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


def test_compare_table_shows_default_params_when_none_varies(frame: pd.DataFrame) -> None:
    table = compare_table(frame.iloc[:1])
    assert list(table.columns[3:6]) == ["optim.lr", "optim.batch_size", "optim.epochs"]


def test_compare_table_sorts_numeric_params_as_numbers(frame: pd.DataFrame) -> None:
    table = compare_table(frame, sort="optim.lr")
    assert list(table["optim.lr"]) == [0.05, 0.1, 0.2, 0.5]  # as strings "0.5" < "0.05" fails


def test_compare_table_top_n(frame: pd.DataFrame) -> None:
    table = compare_table(frame, top=2)
    assert list(table["test/error"]) == pytest.approx([0.10, 0.20])
    with pytest.raises(ValueError, match="top must be >= 1, got 0"):
        compare_table(frame, top=0)


def test_compare_table_rejects_an_unknown_sort_column(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"sort must be one of name, optim.lr, .*got 'accuracy'"):
        compare_table(frame, sort="accuracy")


def test_compare_table_of_no_runs(store: str) -> None:
    table = compare_table(runs_frame(store, "cmp", sweep_id="none"))
    assert table.empty
    assert "test/error" in table.columns
    assert format_table(table, "table").split() == list(table.columns)


def test_compare_runs_reads_the_store(store: str) -> None:
    table = compare_runs(store, "cmp", top=1)
    assert list(table["name"]) == ["lr=0.05 B=100"]


def test_format_csv_reads_back_to_the_same_values(frame: pd.DataFrame) -> None:
    table = compare_table(frame)
    back = pd.read_csv(io.StringIO(format_table(table, "csv")))
    assert list(back.columns) == list(table.columns)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)


def test_format_markdown_has_a_header_separator(frame: pd.DataFrame) -> None:
    table = compare_table(frame)
    lines = format_table(table, "markdown").splitlines()
    assert len(lines) == 2 + len(frame)
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


def test_format_table_is_aligned_text(frame: pd.DataFrame) -> None:
    text = format_table(compare_table(frame), "table")
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["run", "name", "status"]
    assert len(lines) == 1 + len(frame)
    assert "0.05" in lines[1]


def test_format_table_rejects_an_unknown_format(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="fmt must be one of table, csv, markdown, got 'html'"):
        format_table(compare_table(frame), "html")


def test_report_does_not_import_mlflow() -> None:
    code = "import sys, softmax_lab.report; print('mlflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
