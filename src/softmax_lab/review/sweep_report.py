"""A sweep's pictures and table as files: what the sweeper logs and ``compare --plot`` writes.

``write_sweep_report`` puts three files in a directory:

- ``compare.csv``: the comparison table (``report.compare_table``), full precision;
- ``heatmap.png``: final test error (or another per-epoch metric, e.g. ``val/error``) over the
  swept params (``sweep_heatmap.plot_sweep_heatmap``): x and y are the two params with the most
  values, panels the third;
- ``curves.png``: every run's test error (or that metric) per epoch, overlaid
  (``sweep_curves.plot_overlaid_curves``).

Nothing here knows Hydra; runs are read back through ``tracking``, so it works on any runs of a
store, from the CLI or a notebook.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd

from softmax_lab.data.files import write_atomically
from softmax_lab.pictures import sweep_curves, sweep_heatmap
from softmax_lab.review import report
from softmax_lab.tracking import reading
from softmax_lab.tracking.recorder import METRIC_KEYS

__all__ = ["METRIC", "PER_EPOCH", "REPORT_FILES", "heatmap_params", "write_sweep_report"]

logger = logging.getLogger(__name__)

METRIC = "test/error"
# the metrics a report can draw: those logged every epoch, wall time aside
PER_EPOCH = tuple(k for k in METRIC_KEYS if k != "epoch_seconds")
REPORT_FILES = ("compare.csv", "heatmap.png", "curves.png")
MAX_AXES = 3  # a sweep picture shows x, y and facet


def heatmap_params(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The params a heatmap of ``table`` shows, and the swept ones it averages over.

    Parameters
    ----------
    table : DataFrame
        From ``report.compare_table``.

    Returns
    -------
    (shown, averaged) : two lists of param columns
        ``shown``: the swept params (more than one value among the rows), most values first,
        ties in table (config) order, at most three; ``averaged``: the swept ones left out,
        whose runs share a cell and are averaged.
    """
    params = report.table_params(table)
    distinct = {p: int(table[p].nunique(dropna=False)) for p in params}
    swept = sorted((p for p in params if distinct[p] > 1), key=lambda p: -distinct[p])
    return swept[:MAX_AXES], swept[MAX_AXES:]


def _curve_labels(runs: pd.DataFrame, swept: list[str]) -> list[str]:
    """A short legend label per run: its swept params (``lr=0.5 batch_size=50``).

    Keys lose their group (``optim.``) unless two swept keys would then read the same
    (``model.name``, ``dataset.name``). Without swept params the run name stands in; the short
    run id is added where labels repeat or are empty.
    """
    tails = [key.rsplit(".", 1)[-1] for key in swept]
    keys = [tail if tails.count(tail) == 1 else key for key, tail in zip(swept, tails, strict=True)]
    labels = []
    for _, run in runs.iterrows():
        if swept:
            values = [run.get(f"params.{key}") for key in swept]
            labels.append(" ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True)))
        else:
            name = run.get("run_name")
            labels.append(name if isinstance(name, str) else "")
    short = [str(run_id)[:8] for run_id in runs["run_id"]]
    return [
        f"{label} ({s})".lstrip() if not label or labels.count(label) > 1 else label
        for label, s in zip(labels, short, strict=True)
    ]


def write_sweep_report(
    uri: str | None,
    runs: pd.DataFrame,
    out_dir: str | Path,
    *,
    table: pd.DataFrame | None = None,
    metric: str = METRIC,
) -> list[Path]:
    """Write ``compare.csv``, ``heatmap.png`` and ``curves.png`` for ``runs`` into ``out_dir``.

    Parameters
    ----------
    uri : str or None
        The store the runs are in (their test-error histories are read from it).
    runs : DataFrame
        The runs to draw, rows of ``reading.runs_frame`` (full run ids), e.g. one sweep's jobs
        or ``report.ranked_runs(...)`` of what ``compare`` shows.
    out_dir : str or path-like
        Created if missing; files already there are overwritten.
    table : DataFrame, optional
        The comparison table to write and draw the heatmap from; default
        ``report.compare_table(runs)``. Pass the table ``compare`` printed, so the CSV matches it.
    metric : str
        What the heatmap and curves show, one of ``PER_EPOCH``: ``test/error`` by default,
        ``val/error`` to choose among runs with a validation split.

    Returns
    -------
    list of pathlib.Path
        ``out_dir / "compare.csv"``, ``out_dir / "heatmap.png"``, ``out_dir / "curves.png"``.

    Notes
    -----
    In the heatmap, a run that did not finish (FAILED, KILLED, still RUNNING) counts as NaN: its
    cell reads "nan" rather than a half-trained or diverged error. When more than three params
    are swept, the runs that differ only in the others share a cell and are averaged (the title
    says over which).

    Raises
    ------
    ValueError
        If ``runs`` is empty, or ``metric`` is not one of ``PER_EPOCH``.
    """
    if len(runs) == 0:
        raise ValueError("no runs to draw: the sweep report needs at least one run")
    if metric not in PER_EPOCH:
        raise ValueError(f"metric must be one of {', '.join(PER_EPOCH)}, got {metric!r}")
    table = report.compare_table(runs) if table is None else table
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, heatmap_path, curves_path = (out / name for name in REPORT_FILES)

    write_atomically(csv_path, report.format_table(table, "csv").encode())

    shown, averaged = heatmap_params(table)  # all the swept params between them
    finished = table["status"] == "FINISHED"
    values = table[metric] if metric in table.columns else pd.Series(math.nan, index=table.index)
    cells = table[shown].assign(**{metric: values.where(finished, math.nan)})
    n = len(table)
    title = f"final {metric} over {n} run{'s' if n != 1 else ''}"
    if averaged:
        title += f" (mean over {', '.join(averaged)})"
    sweep_heatmap.plot_sweep_heatmap(cells, heatmap_path, metric=metric, params=shown, title=title)

    curves = {
        label: reading.metric_history(uri, run_id, metric)
        for label, run_id in zip(_curve_labels(runs, shown + averaged), runs["run_id"], strict=True)
    }
    sweep_curves.plot_overlaid_curves(
        curves, curves_path, ylabel=metric, title=f"{metric} per epoch, {len(runs)} runs"
    )
    logger.debug("wrote the sweep report of %d runs to %s", len(runs), out)
    return [csv_path, heatmap_path, curves_path]
