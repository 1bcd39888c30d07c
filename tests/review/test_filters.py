"""softmax_lab.review.filters (``compare --where``) on frames read back from a real SQLite store."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from helpers.compare_runs import RUNS

from softmax_lab.review.filters import filter_runs
from softmax_lab.tracking.reading import runs_frame

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
def test_filter_runs_operators(cmp_frame: pd.DataFrame, expr: str, names: set[str]) -> None:
    assert _names(filter_runs(cmp_frame, [expr])) == names


def test_filter_runs_needs_every_expression_to_hold(cmp_frame: pd.DataFrame) -> None:
    kept = filter_runs(cmp_frame, ["optim.lr>0.1", "status=FINISHED"])
    assert _names(kept) == {"lr=0.2 B=100"}
    assert list(kept.columns) == list(cmp_frame.columns)
    assert filter_runs(cmp_frame, []).equals(cmp_frame)


def test_filter_runs_missing_metric_matches_only_not_equal(cmp_frame: pd.DataFrame) -> None:
    no_metric = cmp_frame.assign(**{"metrics.test/error": [None, 0.1, 0.2, 0.3]})
    first = cmp_frame["run_name"].iloc[0]
    assert first not in _names(filter_runs(no_metric, ["test/error<1"]))
    assert first in _names(filter_runs(no_metric, ["test/error!=0.1"]))


def test_filter_runs_knows_config_keys_even_without_runs(cmp_store: str) -> None:
    empty = runs_frame(cmp_store, "cmp", sweep_id="none")
    assert filter_runs(empty, ["optim.lr>0.1", "test/error<0.1"]).empty


@pytest.mark.parametrize("expr", ["optim.lr", "optim.lr>", ">0.1", "optim.lr=>0.1", "a b=1", ""])
def test_filter_runs_rejects_a_malformed_expression(cmp_frame: pd.DataFrame, expr: str) -> None:
    pattern = (
        rf"where expression {re.escape(repr(expr))} is malformed: expected KEY OP VALUE "
        r"with OP one of = == != < <= > >=.*valid keys: status, dataset.name, .*optim.lr, "
        r".*test/error"
    )
    with pytest.raises(ValueError, match=pattern):
        filter_runs(cmp_frame, [expr])


def test_filter_runs_rejects_an_unknown_key_suggesting_the_nearest(cmp_frame: pd.DataFrame) -> None:
    with pytest.raises(
        ValueError,
        match=r"where expression 'optim.lrr>0.1': unknown key 'optim.lrr' \(did you mean "
        r"'optim.lr'\?\); valid keys: status, .*optim.batch_size.*train/loss",
    ):
        filter_runs(cmp_frame, ["status=FINISHED", "optim.lrr>0.1"])


def test_filter_runs_suggests_the_full_key_for_a_short_one(cmp_frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"unknown key 'lr' \(did you mean 'optim.lr'\?\)"):
        filter_runs(cmp_frame, ["lr>0.1"])


def test_filter_runs_rejects_ordering_against_text(cmp_frame: pd.DataFrame) -> None:
    with pytest.raises(
        ValueError, match=r"where expression 'model.name<mlp': < compares numbers, got 'mlp'"
    ):
        filter_runs(cmp_frame, ["model.name<mlp"])


# --- dataset.digest: the runs on the same data -------------------------------------------------

# fingerprints that look like numbers to float(): "1e5…" must still compare as text
DIGITS = "12345678" + "0" * 56
EXPONENT = "12345678e5" + "a" * 54
OTHER = "abcdef0123456789" * 4


def _with_fingerprints(cmp_frame: pd.DataFrame) -> pd.DataFrame:
    return cmp_frame.assign(**{"tags.sl.dataset_fingerprint": [DIGITS, EXPONENT, OTHER, None]})


@pytest.mark.parametrize(
    ("expr", "rows"),
    [
        (f"dataset.digest={OTHER}", [2]),  # the whole fingerprint
        (f"dataset.digest={OTHER[:36]}", [2]),  # the MLflow inputs' digest
        (f"dataset.digest=={OTHER[:8].upper()}", [2]),  # a prefix, any case
        ("dataset.digest=12345678", [0, 1]),  # a prefix, never a number
        ("dataset.digest=12345678e5", [1]),
        (f"dataset.digest={DIGITS}", [0]),
        ("dataset.digest!=12345678", [2, 3]),  # a run without a fingerprint matches only !=
        ("dataset.digest=99999999", []),
    ],
)
def test_filter_runs_on_dataset_digest_matches_fingerprint_prefixes(
    cmp_frame: pd.DataFrame, expr: str, rows: list[int]
) -> None:
    df = _with_fingerprints(cmp_frame)
    assert list(filter_runs(df, [expr]).index) == [df.index[i] for i in rows]


def test_filter_runs_on_dataset_digest_without_fingerprints_keeps_none(
    cmp_frame: pd.DataFrame,
) -> None:
    assert "tags.sl.dataset_fingerprint" not in cmp_frame
    assert filter_runs(cmp_frame, ["dataset.digest=12345678"]).empty
    assert len(filter_runs(cmp_frame, ["dataset.digest!=12345678"])) == len(cmp_frame)


@pytest.mark.parametrize(
    "expr", ["dataset.digest=1234567", "dataset.digest>12345678", "dataset.digest=xyzxyzxyz"]
)
def test_filter_runs_rejects_a_bad_dataset_digest(cmp_frame: pd.DataFrame, expr: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"where expression {re.escape(repr(expr))}: dataset.digest takes = or != and 8 "
        r"to 64 hex digits of a dataset fingerprint",
    ):
        filter_runs(cmp_frame, [expr])


def test_filter_runs_suggests_dataset_digest_for_digest(cmp_frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"unknown key 'digest' \(did you mean 'dataset.digest'"):
        filter_runs(cmp_frame, ["digest=12345678"])
