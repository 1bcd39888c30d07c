"""softmax_lab.report on frames read back from a real SQLite MLflow store."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pandas as pd
import pytest

from softmax_lab.config import Config, flatten
from softmax_lab.report import (
    METRICS,
    compare_runs,
    compare_table,
    diff_runs,
    filter_runs,
    format_diff,
    format_table,
    ranked_runs,
    select_run,
)
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


# --- filter_runs ------------------------------------------------------------------------------


def _names(df: pd.DataFrame) -> set[str]:
    return set(df["run_name"])


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("optim.lr>0.1", {"lr=0.2 B=100", "lr=0.5 B=50"}),
        ("optim.lr>=0.2", {"lr=0.2 B=100", "lr=0.5 B=50"}),
        ("optim.lr<0.1", {"lr=0.05 B=100"}),
        ("optim.lr<=0.1", {"lr=0.05 B=100", "lr=0.1 B=50"}),
        ("optim.lr=0.50", {"lr=0.5 B=50"}),  # numbers compare as numbers, not as text
        ("optim.lr==0.5", {"lr=0.5 B=50"}),
        ("optim.batch_size!=100", {"lr=0.1 B=50", "lr=0.5 B=50"}),
        ("test/error<0.25", {"lr=0.05 B=100", "lr=0.1 B=50", "lr=0.5 B=50"}),
        ("status=FAILED", {"lr=0.5 B=50"}),
        ("status != finished", {"lr=0.5 B=50"}),  # text ignores case; spaces are allowed
        ("model.name=softmax", {f"lr={r[0]} B={r[1]}" for r in RUNS}),
        ("optim.shuffle=false", {f"lr={r[0]} B={r[1]}" for r in RUNS}),  # logged as "False"
        ("dataset.path=None", {f"lr={r[0]} B={r[1]}" for r in RUNS}),
        ("dataset.path>1", set()),  # "None" is no number: ordering never matches it
        ("params.optim.lr>0.4", {"lr=0.5 B=50"}),  # the frame's own column names work too
    ],
)
def test_filter_runs_operators(frame: pd.DataFrame, expr: str, names: set[str]) -> None:
    assert _names(filter_runs(frame, [expr])) == names


def test_filter_runs_needs_every_expression_to_hold(frame: pd.DataFrame) -> None:
    kept = filter_runs(frame, ["optim.lr>0.1", "status=FINISHED"])
    assert _names(kept) == {"lr=0.2 B=100"}
    assert list(kept.columns) == list(frame.columns)
    assert filter_runs(frame, []).equals(frame)


def test_filter_runs_missing_metric_matches_only_not_equal(frame: pd.DataFrame) -> None:
    no_metric = frame.assign(**{"metrics.test/error": [None, 0.1, 0.2, 0.3]})
    first = frame["run_name"].iloc[0]
    assert first not in _names(filter_runs(no_metric, ["test/error<1"]))
    assert first in _names(filter_runs(no_metric, ["test/error!=0.1"]))


def test_filter_runs_knows_config_keys_even_without_runs(store: str) -> None:
    empty = runs_frame(store, "cmp", sweep_id="none")
    assert filter_runs(empty, ["optim.lr>0.1", "test/error<0.1"]).empty


@pytest.mark.parametrize("expr", ["optim.lr", "optim.lr>", ">0.1", "optim.lr=>0.1", "a b=1", ""])
def test_filter_runs_rejects_a_malformed_expression(frame: pd.DataFrame, expr: str) -> None:
    pattern = (
        rf"where expression {re.escape(repr(expr))} is malformed: expected KEY OP VALUE "
        r"with OP one of = == != < <= > >=.*valid keys: status, dataset.name, .*optim.lr, "
        r".*test/error"
    )
    with pytest.raises(ValueError, match=pattern):
        filter_runs(frame, [expr])


def test_filter_runs_rejects_an_unknown_key_suggesting_the_nearest(frame: pd.DataFrame) -> None:
    with pytest.raises(
        ValueError,
        match=r"where expression 'optim.lrr>0.1': unknown key 'optim.lrr' \(did you mean "
        r"'optim.lr'\?\); valid keys: status, .*optim.batch_size.*train/loss",
    ):
        filter_runs(frame, ["status=FINISHED", "optim.lrr>0.1"])


def test_filter_runs_suggests_the_full_key_for_a_short_one(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"unknown key 'lr' \(did you mean 'optim.lr'\?\)"):
        filter_runs(frame, ["lr>0.1"])


def test_filter_runs_rejects_ordering_against_text(frame: pd.DataFrame) -> None:
    with pytest.raises(
        ValueError, match=r"where expression 'model.name<mlp': < compares numbers, got 'mlp'"
    ):
        filter_runs(frame, ["model.name<mlp"])


# --- sort on columns the table does not show, ranked_runs, name truncation --------------------


def test_compare_table_sorts_by_a_param_it_does_not_show(frame: pd.DataFrame) -> None:
    table = compare_table(frame, sort="optim.epochs")  # the same for all: the order stays
    assert "optim.epochs" not in table.columns
    assert list(table["status"]) == ["FINISHED"] * 3 + ["FAILED"]


def test_compare_table_sorts_by_any_logged_metric(frame: pd.DataFrame) -> None:
    timed = frame.assign(**{"metrics.epoch_seconds": [3.0, 1.0, 2.0, 0.5]})
    table = compare_table(timed, sort="epoch_seconds")
    expected = timed[timed["status"] == "FINISHED"].sort_values("metrics.epoch_seconds")
    assert list(table["name"]) == [
        *expected["run_name"],
        *timed.loc[timed["status"] == "FAILED", "run_name"],
    ]
    with pytest.raises(ValueError, match=r"sort must be one of .*optim.epochs.*epoch_seconds"):
        compare_table(frame, sort="nope")


def test_ranked_runs_are_the_rows_the_table_shows(frame: pd.DataFrame) -> None:
    table = compare_table(frame, sort="train/loss", top=3)
    runs = ranked_runs(frame, sort="train/loss", top=3)
    assert list(runs["run_id"].str[:8]) == list(table["run"])
    assert list(runs.columns) == list(frame.columns)


def test_format_table_shortens_long_names_in_table_format_only(frame: pd.DataFrame) -> None:
    long = "optim.lr=0.05 optim.batch_size=50 optim.epochs=2 model=mlp model.hidden_dim=16"
    table = compare_table(frame).assign(name=long)
    text = format_table(table, "table")
    assert long[:39] + "…" in text and long not in text
    assert long in format_table(table, "csv") and long in format_table(table, "markdown")


# --- select_run, diff_runs, format_diff --------------------------------------------------------


def test_select_run_by_full_id_or_prefix(frame: pd.DataFrame) -> None:
    run_id = frame["run_id"].iloc[2]
    assert select_run(frame, run_id)["run_id"] == run_id
    assert select_run(frame, run_id[:8])["run_id"] == run_id


def test_select_run_rejects_unknown_ambiguous_and_empty_ids(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no run with id 'zzzzzzzz' among these 4 runs"):
        select_run(frame, "zzzzzzzz")
    same_start = frame.assign(run_id=["abc1", "abc2", "d", "e"])
    with pytest.raises(ValueError, match="run id prefix 'abc' is ambiguous: it matches abc1, abc2"):
        select_run(same_start, "abc")
    with pytest.raises(ValueError, match="run id must not be empty"):
        select_run(frame, " ")


def test_diff_runs_lists_differing_params_and_final_metrics(frame: pd.DataFrame) -> None:
    by_name = frame.set_index("run_name", drop=False)
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


def test_diff_runs_of_a_run_with_itself_is_empty(frame: pd.DataFrame) -> None:
    row = frame.iloc[0]
    diff = diff_runs(row, row)
    assert diff.params.empty
    assert (diff.metrics["B-A"] == 0).all()
    assert "(none: every param is the same)" in format_diff(diff)


def test_format_diff_table_markdown_and_csv(frame: pd.DataFrame) -> None:
    diff = diff_runs(frame.iloc[0], frame.iloc[1])
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


def test_seconds_is_the_runs_own_training_time_when_tagged(frame: pd.DataFrame) -> None:
    # a fused run's wall time spans its whole group; its sl.train_seconds is its own share
    tagged = frame.assign(**{"tags.sl.train_seconds": ["0.25", "1.5", None, "0.75"]})
    table = compare_table(tagged).set_index("run")
    shares = dict(zip(tagged["run_id"].str[:8], tagged["tags.sl.train_seconds"], strict=True))
    wall = compare_table(frame).set_index("run")["seconds"]
    for run, share in shares.items():
        expected = wall[run] if pd.isna(share) else float(share)
        assert table.loc[run, "seconds"] == pytest.approx(expected)
