"""The ``compare`` table: runs side by side, best first, as text, CSV or markdown.

Also what ``softmax-lab compare`` does to the runs before and besides the table: keep those
matching ``--where`` expressions (``filter_runs``), find a run by id or prefix (``select_run``),
and put two runs side by side (``diff_runs``, ``format_diff``).

Pure pandas on the frame ``softmax_lab.tracking.runs_frame`` returns, so formatting never imports
mlflow; only ``compare_runs`` fetches (and imports ``tracking``) when it is called.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from softmax_lab.config import Config, flatten

__all__ = [
    "FORMATS",
    "WHERE_OPS",
    "RunDiff",
    "compare_runs",
    "compare_table",
    "diff_runs",
    "filter_runs",
    "format_diff",
    "format_table",
    "ranked_runs",
    "select_run",
    "table_params",
]

Format = Literal["table", "csv", "markdown"]
FORMATS: tuple[Format, ...] = ("table", "csv", "markdown")
METRICS = ("train/loss", "train/error", "test/loss", "test/error")
DEFAULT_PARAMS = ("optim.lr", "optim.batch_size", "optim.epochs")
PARAM_ORDER = tuple(flatten(Config()))  # the config's own order: dataset, model, optim, seed
LAST_STATUSES = ("FAILED", "KILLED")
NAME_WIDTH = 40  # the ``table`` format shortens longer run names (sweep overrides can be long)
TABLE_FIXED = ("run", "name", "status", *METRICS, "seconds")  # compare_table's non-param columns


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


def compare_table(
    df: pd.DataFrame, *, sort: str = "test/error", top: int | None = None
) -> pd.DataFrame:
    """One row per run, best first: who it is, what differed, how it did.

    Parameters
    ----------
    df : DataFrame
        As returned by ``softmax_lab.tracking.runs_frame``.
    sort : str
        Column to sort by, ascending: a metric (``test/error``, ``train/loss``, any other metric
        logged), ``seconds``, ``name``, or any param (shown or not; numeric params sort as
        numbers). Runs that FAILED or were KILLED, and runs without a value to sort by, come
        last.
    top : int, optional
        Keep only the first ``top`` rows.

    Returns
    -------
    DataFrame
        Columns ``run`` (first 8 characters of the run id), ``name``, ``status``, then the params
        that vary across ``df`` (numeric where they are numbers; ``optim.lr``,
        ``optim.batch_size``, ``optim.epochs`` when none varies), then the last epoch's
        ``train/loss``, ``train/error``, ``test/loss``, ``test/error``, and ``seconds``: the
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
    for key in _shown_params(df):
        table[key] = _numeric_if_possible(column(f"params.{key}"))
    for key in METRICS:
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
    choices = [c for c in table.columns if c not in ("run", "status")] + list(hidden)
    if sort not in choices:
        raise ValueError(f"sort must be one of {', '.join(choices)}, got {sort!r}")
    if sort in table.columns:
        key = table[sort]
    elif hidden[sort].startswith("params."):
        key = _numeric_if_possible(column(hidden[sort]))
    else:
        key = pd.to_numeric(column(hidden[sort]), errors="coerce")
    table["_key"] = key.to_numpy()
    table["_last"] = table["status"].isin(LAST_STATUSES) | table["_key"].isna()
    table = table.sort_values(["_last", "_key"], kind="stable", na_position="last")
    table = table.drop(columns=["_last", "_key"])
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
    from softmax_lab.tracking import runs_frame  # mlflow only when runs are actually read

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


# --- --where: keep the runs that match ---------------------------------------------------------

WHERE_OPS = ("=", "==", "!=", "<", "<=", ">", ">=")
_ORDERING = ("<", "<=", ">", ">=")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# KEY OP VALUE; the value may not start with an operator character, so "lr=>1" is malformed
_WHERE = re.compile(r"\s*([^\s=!<>]+)\s*(==|!=|<=|>=|=|<|>)\s*([^\s=!<>].*?)\s*")


@dataclass(frozen=True)
class _Where:
    text: str
    column: str
    op: str
    value: str


def _where_keys(df: pd.DataFrame) -> dict[str, str]:
    """Every key a ``--where`` may name, mapped to its column in ``df``.

    The config's params and the four metrics are always valid (a frame of no runs has no
    columns for them), plus whatever other params and metrics ``df`` holds.
    """
    logged = {
        prefix: [c.removeprefix(prefix) for c in df.columns if c.startswith(prefix)]
        for prefix in ("params.", "metrics.")
    }
    params = dict.fromkeys([*PARAM_ORDER, *logged["params."]])
    metrics = dict.fromkeys([*METRICS, *logged["metrics."]])
    return {
        "status": "status",
        **{k: f"params.{k}" for k in params},
        **{k: f"metrics.{k}" for k in metrics},
    }


def _parse_where(text: str, keys: dict[str, str]) -> _Where:
    valid = "valid keys: " + ", ".join(keys)
    found = _WHERE.fullmatch(text)
    if found is None:
        raise ValueError(
            f"where expression {text!r} is malformed: expected KEY OP VALUE with OP one of "
            f"{' '.join(WHERE_OPS)}, e.g. 'optim.lr>0.1' or 'status=FINISHED'; {valid}"
        )
    key, op, value = found.groups()
    key = key.removeprefix("params.").removeprefix("metrics.")
    if key not in keys:
        # "lr" means "optim.lr"; else the nearest spelling ("optim.lrr")
        close = [k for k in keys if k.rsplit(".", 1)[-1] == key]
        close = close or difflib.get_close_matches(key, keys, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"where expression {text!r}: unknown key {key!r}{hint}; {valid}")
    if op in _ORDERING and _number(value) is None:
        raise ValueError(
            f"where expression {text!r}: {op} compares numbers, got {value!r}; "
            "use = or != to compare text"
        )
    return _Where(text, keys[key], op, value)


def _number(value: Any) -> float | None:
    """``value`` as a float if it is a number or a string of one, else None."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _holds(cell: Any, where: _Where) -> bool:
    """Whether one run's value satisfies ``where``; a run without the key matches only ``!=``."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return where.op == "!="
    a, b = _number(cell), _number(where.value)
    if a is not None and b is not None:
        return _COMPARE[where.op](a, b)
    if where.op in _ORDERING:  # the value is a number, this run's is not (e.g. "None")
        return False
    same = str(cell).casefold() == where.value.casefold()
    return same if where.op in ("=", "==") else not same


def filter_runs(df: pd.DataFrame, exprs: Sequence[str]) -> pd.DataFrame:
    """The runs of ``df`` for which every expression holds, in their order.

    Parameters
    ----------
    df : DataFrame
        As returned by ``softmax_lab.tracking.runs_frame``.
    exprs : sequence of str
        ``KEY OP VALUE``, e.g. ``"optim.lr>0.1"``, ``"model.name=mlp"``, ``"test/error<=0.1"``,
        ``"status!=FAILED"``. KEY is a param, a metric (its final value) or ``status``; OP one of
        ``= == != < <= > >=``. Both sides numbers (params are logged as text: ``"0.5"`` counts):
        compared as numbers, so ``optim.lr=0.50`` matches ``0.5``. Otherwise ``=``/``==``/``!=``
        compare text, ignoring case (``optim.shuffle=false`` matches the logged ``False``), and
        the ordering operators, which need a number VALUE, do not match. A run without a value
        for KEY (a metric it never logged) matches only ``!=``.

    Raises
    ------
    ValueError
        For a malformed expression, an unknown key, or an ordering operator with a non-numeric
        VALUE; the message names the expression and lists the valid keys. Every expression is
        checked before any is applied.
    """
    keys = _where_keys(df)
    wheres = [_parse_where(text, keys) for text in exprs]
    keep = pd.Series(True, index=df.index)
    for where in wheres:
        if where.column not in df.columns:  # a known key no run has: only != can hold
            keep &= where.op == "!="
            continue
        keep &= df[where.column].map(lambda cell, w=where: _holds(cell, w)).astype(bool)
    return df[keep]


# --- --diff: two runs side by side -------------------------------------------------------------


def select_run(df: pd.DataFrame, run: str) -> pd.Series:
    """The row of ``df`` whose ``run_id`` is ``run`` or starts with it (e.g. the 8 shown).

    Raises
    ------
    ValueError
        When no run, or more than one, matches (the message lists the candidates).
    """
    run = run.strip()
    if not run:
        raise ValueError("run id must not be empty: pass a run id or its first 8 characters")
    ids = df["run_id"].astype(str)
    exact = df[ids == run]
    matches = exact if len(exact) else df[ids.str.startswith(run)]
    if len(matches) == 1:
        return matches.iloc[0]
    if len(matches) == 0:
        raise ValueError(
            f"no run with id {run!r} among these {len(df)} runs; pass an id (or its first 8 "
            "characters) as `softmax-lab compare` shows it, and --experiment/--sweep if the run "
            "belongs to another experiment"
        )
    raise ValueError(
        f"run id prefix {run!r} is ambiguous: it matches {', '.join(matches['run_id'])}; "
        "pass more characters"
    )


@dataclass(frozen=True)
class RunDiff:
    """Two runs side by side: what was set differently and how each ended.

    Attributes
    ----------
    a, b : str
        Each run as ``"<first 8 of id>  <name> (<status>)"``.
    params : DataFrame
        Columns ``key``, ``A``, ``B``: the params whose logged values differ (text as logged,
        None where a run lacks the param), in config order.
    metrics : DataFrame
        Columns ``metric``, ``A``, ``B``, ``B-A``: every final metric either run logged (float,
        NaN where missing), the four of the table first.
    """

    a: str
    b: str
    params: pd.DataFrame
    metrics: pd.DataFrame


def _value(row: pd.Series, key: str) -> Any:
    value = row.get(key)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _label(row: pd.Series) -> str:
    run_id = str(row.get("run_id", ""))[:8]
    return f"{run_id}  {_value(row, 'run_name') or ''} ({_value(row, 'status') or '?'})"


def diff_runs(row_a: pd.Series, row_b: pd.Series) -> RunDiff:
    """Compare two rows of ``softmax_lab.tracking.runs_frame`` (see ``RunDiff``)."""
    rank = {k: i for i, k in enumerate(PARAM_ORDER)}
    labels = (*row_a.index, *row_b.index)
    param_keys = sorted(
        {k.removeprefix("params.") for k in labels if k.startswith("params.")},
        key=lambda k: (rank.get(k, len(rank)), k),
    )
    differing = []
    for key in param_keys:
        a, b = _value(row_a, f"params.{key}"), _value(row_b, f"params.{key}")
        if a != b:
            differing.append((key, a, b))
    order = {k: i for i, k in enumerate(METRICS)}
    metric_keys = sorted(
        {
            k.removeprefix("metrics.")
            for row in (row_a, row_b)
            for k in row.index
            if k.startswith("metrics.") and _value(row, k) is not None
        },
        key=lambda k: (order.get(k, len(order)), k),
    )

    def final(row: pd.Series) -> list[float]:
        return [pd.to_numeric(row.get(f"metrics.{k}", math.nan)) for k in metric_keys]

    metrics = pd.DataFrame({"metric": metric_keys, "A": final(row_a), "B": final(row_b)})
    metrics = metrics.astype({"A": float, "B": float})
    metrics["B-A"] = metrics["B"] - metrics["A"]
    params = pd.DataFrame(differing, columns=["key", "A", "B"])
    return RunDiff(_label(row_a), _label(row_b), params, metrics)


def format_diff(diff: RunDiff, fmt: Format | str = "table") -> str:
    """Render a ``RunDiff``: the two runs, the params that differ, the final metrics.

    ``table`` and ``markdown`` give three titled parts; ``csv`` gives one table with columns
    ``section`` (``param`` or ``metric``), ``key``, ``A``, ``B``, ``B-A``.
    """
    if fmt == "csv":
        params = diff.params.assign(section="param")
        metrics = diff.metrics.rename(columns={"metric": "key"}).assign(section="metric")
        both = pd.concat([params, metrics], ignore_index=True)
        return format_table(both[["section", "key", "A", "B", "B-A"]], "csv")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    title = (lambda s: f"**{s}**") if fmt == "markdown" else (lambda s: s)
    differ = (
        format_table(diff.params, fmt) if len(diff.params) else "(none: every param is the same)"
    )
    return "\n".join(
        [
            f"A: {diff.a}",
            f"B: {diff.b}",
            "",
            title("params that differ:"),
            differ,
            "",
            title("final metrics:"),
            format_table(diff.metrics, fmt),
        ]
    )
