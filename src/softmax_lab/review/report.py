"""The ``compare`` table: runs side by side, best first, as text, CSV or markdown.

What ``softmax-lab compare`` does to the runs before and besides the table lives next door:
keeping those matching ``--where`` expressions in ``softmax_lab.review.filters`` (``filter_runs``),
finding a run by id or prefix and putting two runs side by side in ``softmax_lab.review.diff``
(``select_run``, ``diff_runs``, ``format_diff``).

Pure pandas on the frame ``softmax_lab.tracking.runs_frame`` returns, so formatting never imports
mlflow; only ``compare_runs`` fetches (and imports ``tracking``) when it is called.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd

from softmax_lab.config.schema import Config, flatten

__all__ = [
    "EXPLODED",
    "FORMATS",
    "PRUNED",
    "compare_runs",
    "compare_table",
    "default_sort",
    "format_table",
    "ranked_runs",
    "table_params",
]

Format = Literal["table", "csv", "markdown"]
FORMATS: tuple[Format, ...] = ("table", "csv", "markdown")
METRICS = ("train/loss", "train/error", "test/loss", "test/error")
VAL_METRICS = ("val/loss", "val/error")  # shown only when a run has them (dataset.val_size > 0)
DEFAULT_PARAMS = ("optim.lr", "optim.batch_size", "optim.epochs")
PARAM_ORDER = tuple(flatten(Config()))  # the config's own order: dataset, model, optim, seed
LAST_STATUSES = ("FAILED", "KILLED")
NAME_WIDTH = 40  # the ``table`` format shortens longer run names (sweep overrides can be long)
# the non-param columns
TABLE_FIXED = ("run", "name", "status", "flag", *METRICS, *VAL_METRICS, "seconds")
EXPLODED = "exploded"  # the flag of a run tagged sl.exploded=true
PRUNED = "pruned"  # the flag of a run tagged sl.pruned=true: "pruned@<epoch it stopped after>"


def _numeric_if_possible(values: pd.Series) -> pd.Series:
    """Logged params are strings: make a column numeric when every value set is a number.

    ``"None"`` counts as missing, so ``["100", "None"]`` becomes ``[100.0, NaN]``; booleans and
    names stay strings.
    """
    present = values[values.notna() & (values != "None")]
    try:
        pd.to_numeric(present, errors="raise")
    except (ValueError, TypeError):
        return values
    return pd.to_numeric(values.where(values != "None"), errors="coerce")


def _shown_params(df: pd.DataFrame) -> list[str]:
    """The params that differ between the runs (in config order); the defaults if none does."""
    keys = [c.removeprefix("params.") for c in df.columns if c.startswith("params.")]
    varying = [k for k in keys if df[f"params.{k}"].nunique(dropna=False) > 1]
    if not varying:
        return list(DEFAULT_PARAMS)
    rank = {k: i for i, k in enumerate(PARAM_ORDER)}
    return sorted(varying, key=lambda k: (rank.get(k, len(rank)), k))


def default_sort(df: pd.DataFrame) -> str:
    """What a sweep's runs are ranked by: ``val/error`` when every finished run has a validation
    split (``dataset.val_size`` > 0), so the best run is not chosen on the test set; else
    ``test/error``."""
    if "metrics.val/error" in df.columns and "status" in df.columns:
        finished = df[df["status"] == "FINISHED"]
        if len(finished) and finished["metrics.val/error"].notna().all():
            return "val/error"
    return "test/error"


def compare_table(
    df: pd.DataFrame, *, sort: str = "test/error", top: int | None = None
) -> pd.DataFrame:
    """One row per run, best first: who it is, what differed, how it did.

    Parameters
    ----------
    df : DataFrame
        As returned by ``softmax_lab.tracking.runs_frame``.
    sort : str
        Column to sort by, ascending: a metric (``test/error``, ``val/error``, ``train/loss``,
        any other metric logged), ``seconds``, ``name``, or any param (shown or not; numeric
        params sort as numbers). Runs a search pruned come after the runs that trained all
        their epochs, and runs flagged ``exploded`` after those, so the first row is never
        one; runs that FAILED or were KILLED, and runs without a value to sort by, come last.
    top : int, optional
        Keep only the first ``top`` rows.

    Returns
    -------
    DataFrame
        Columns ``run`` (first 8 characters of the run id), ``name``, ``status``, ``flag`` (only
        when a run has one: ``exploded`` for a run tagged ``sl.exploded=true``, whose final train
        loss was not below its ``optim.max_train_loss``, by default ln k; ``pruned@E`` for a
        trial an Optuna search stopped after epoch E), then the params
        that vary across ``df`` (numeric where they are numbers; ``optim.lr``,
        ``optim.batch_size``, ``optim.epochs`` when none varies), then the last epoch's
        ``train/loss``, ``train/error``, ``val/loss`` and ``val/error`` (only when a run has a
        validation split, ``dataset.val_size`` > 0), ``test/loss``, ``test/error``, and
        ``seconds``: the
        run's own training time, the sum of its epochs' ``epoch_seconds`` (tag
        ``sl.train_seconds``; for a fused run, its share of the fused epochs); for runs without
        that tag (failed before finishing, or older), the wall time end minus start, which
        includes loading data and logging (NaN while it runs).

    Raises
    ------
    ValueError
        If ``sort`` is neither a column of the table nor a param or metric of ``df`` (the
        message lists the valid ones), or ``top`` < 1.
    """
    return _ranked(df, sort=sort, top=top).reset_index(drop=True)


def ranked_runs(
    df: pd.DataFrame, *, sort: str = "test/error", top: int | None = None
) -> pd.DataFrame:
    """The rows of ``df`` that ``compare_table(df, sort=sort, top=top)`` shows, in its order.

    For what needs the full run ids (metric histories) of exactly the runs a table shows.
    """
    return df.iloc[_ranked(df, sort=sort, top=top).index]


def table_params(table: pd.DataFrame) -> list[str]:
    """The param columns of a ``compare_table`` (those between ``status`` and the metrics)."""
    return [c for c in table.columns if c not in TABLE_FIXED]


def _ranked(df: pd.DataFrame, *, sort: str, top: int | None) -> pd.DataFrame:
    """``compare_table`` indexed by each row's position in ``df``."""
    if top is not None and top < 1:
        raise ValueError(f"top must be >= 1, got {top}")

    def column(name: str) -> pd.Series:
        if name in df.columns:
            return df[name].reset_index(drop=True)
        return pd.Series([math.nan] * len(df), dtype=float)

    table = pd.DataFrame(
        {
            "run": column("run_id").astype("string").str[:8].astype(object),
            "name": column("run_name"),
            "status": column("status"),
        }
    )
    exploded = (column("tags.sl.exploded") == "true").to_numpy()
    pruned = (column("tags.sl.pruned") == "true").to_numpy()
    if exploded.any() or pruned.any():  # only then: tables of runs that all learned keep theirs
        stopped = column("tags.sl.stopped_at_epoch")
        table["flag"] = [
            EXPLODED if e else f"{PRUNED}@{s}" if p else None
            for e, p, s in zip(exploded, pruned, stopped, strict=True)
        ]
    for key in _shown_params(df):
        table[key] = _numeric_if_possible(column(f"params.{key}"))
    # the validation columns only when a run has them, between train and test
    val = [k for k in VAL_METRICS if column(f"metrics.{k}").notna().any()]
    for key in (*METRICS[:2], *val, *METRICS[2:]):
        table[key] = pd.to_numeric(column(f"metrics.{key}"), errors="coerce")
    started = pd.to_datetime(column("start_time"), utc=True)
    ended = pd.to_datetime(column("end_time"), utc=True)
    wall = (ended - started).dt.total_seconds()
    trained = pd.to_numeric(column("tags.sl.train_seconds"), errors="coerce")
    table["seconds"] = trained.fillna(wall)

    # not-shown params (and metrics beyond the four) are valid sort keys too, from df itself
    hidden = {
        key: column
        for column in df.columns
        if column.startswith(("params.", "metrics."))
        and (key := column.split(".", 1)[1]) not in table.columns
    }
    choices = [c for c in table.columns if c not in ("run", "status", "flag")] + list(hidden)
    if sort not in choices:
        raise ValueError(f"sort must be one of {', '.join(choices)}, got {sort!r}")
    if sort in table.columns:
        key = table[sort]
    elif hidden[sort].startswith("params."):
        key = _numeric_if_possible(column(hidden[sort]))
    else:
        key = pd.to_numeric(column(hidden[sort]), errors="coerce")
    table["_key"] = key.to_numpy()
    last = table["status"].isin(LAST_STATUSES) | table["_key"].isna()
    # learned, then pruned (stopped early by a search: its value is of fewer epochs), then
    # exploded, then the rest
    table["_rank"] = np.where(last, 3, np.where(exploded, 2, np.where(pruned, 1, 0)))
    table = table.sort_values(["_rank", "_key"], kind="stable", na_position="last")
    table = table.drop(columns=["_rank", "_key"])
    return table if top is None else table.head(top)


def compare_runs(
    uri: str | None,
    experiment: str,
    *,
    sweep_id: str | None = None,
    filter_string: str | None = None,
    sort: str = "test/error",
    top: int | None = None,
) -> pd.DataFrame:
    """``compare_table`` of the job runs in a store (imports mlflow, through ``tracking``)."""
    from softmax_lab.tracking.reading import runs_frame

    df = runs_frame(uri, experiment, sweep_id=sweep_id, filter_string=filter_string)
    return compare_table(df, sort=sort, top=top)


def _cell(value: Any) -> str:
    """A value as text: floats to 5 significant digits, missing as empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, float):
        return f"{value:.5g}"
    return str(value)


def _shorten(value: Any) -> Any:
    if isinstance(value, str) and len(value) > NAME_WIDTH:
        return value[: NAME_WIDTH - 1] + "…"
    return value


def _markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table; numeric columns right-aligned, cells padded."""
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    header = [str(c).replace("|", "\\|") for c in df.columns]
    rows = [
        [_cell(v).replace("|", "\\|").replace("\n", " ") for v in row]
        for row in df.itertuples(index=False)
    ]
    widths = [max(3, len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if num else "-" * w for w, num in zip(widths, numeric, strict=True)]
    return "\n".join([line(header), line(rule), *(line(r) for r in rows)])


def format_table(df: pd.DataFrame, fmt: Format | str = "table") -> str:
    """Render a table as aligned plain text, CSV, or GitHub markdown.

    Parameters
    ----------
    df : DataFrame
        Usually from ``compare_table``.
    fmt : {"table", "csv", "markdown"}
        ``table``: aligned columns, floats to 5 significant digits, missing as ``-``, a ``name``
        column shortened to 40 characters (ending in ``…``).
        ``csv``: full precision, so it reads back to the same numbers.
        ``markdown``: a pipe table with a header separator row, floats as in ``table``.

    Raises
    ------
    ValueError
        For any other ``fmt``.
    """
    if fmt == "csv":
        return str(df.to_csv(index=False))
    if fmt == "markdown":
        return _markdown(df)
    if fmt == "table":
        if df.empty:
            return "  ".join(str(c) for c in df.columns)
        if "name" in df.columns:
            df = df.assign(name=df["name"].map(_shorten))
        return str(df.map(lambda v: _cell(v) or "-").to_string(index=False))
    raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
