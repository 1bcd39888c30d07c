"""``compare --diff``: find two runs by id or prefix and put them side by side.

``select_run`` picks a run's row out of a frame, ``diff_runs`` lists the params that differ and
every final metric of two rows, ``format_diff`` renders that in the formats of the ``compare``
table (``softmax_lab.review.report.format_table``). Pure pandas on the frame
``softmax_lab.tracking.runs_frame`` returns; never imports mlflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from softmax_lab.review.report import FORMATS, METRICS, PARAM_ORDER, Format, format_table

__all__ = ["RunDiff", "diff_runs", "format_diff", "select_run"]

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
