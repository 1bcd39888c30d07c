"""A finished sweep on the terminal and on its parent run: the table, the pictures, what next."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["summarise_sweep"]

log = logging.getLogger(__name__)


def _log_best_model(uri: str, ranked: pd.DataFrame) -> None:
    """Log the best FINISHED run's model, from its params/*.npy (``tracking.log_model``)."""
    from softmax_lab.tracking import models

    finished = ranked[ranked["status"] == "FINISHED"] if len(ranked) else ranked
    if len(finished) == 0:
        return
    run_id = str(finished["run_id"].iloc[0])
    try:
        model_uri = models.ensure_model(uri, run_id)
    except Exception as err:  # the sweep's runs stand without it
        log.warning("could not log the model of the best run %s: %s", run_id, err)
        return
    print(f"\nmodel of the best run: {model_uri}  (softmax-lab predict {run_id[:8]} IMAGE…)")


def summarise_sweep(
    uri: str,
    experiment: str,
    sweep_id: str,
    n: int,
    failed: list[str],
    parent_run_id: str,
    report_dir: Path,
    *,
    log_best_model: bool = False,
) -> None:
    """Print the sweep's table; write its pictures to ``report_dir`` and the parent run; with
    ``log_best_model`` (``tracking.log_model=single``), log the best run's MLflow model."""
    from softmax_lab.review import report
    from softmax_lab.review.sweep_report import write_sweep_report
    from softmax_lab.tracking import reading, run_writes

    runs = reading.runs_frame(uri, experiment, sweep_id=sweep_id)
    sort = report.default_sort(runs)  # val/error when every run has a validation split
    table = report.compare_table(runs, sort=sort)
    by = "" if sort == "test/error" else f" by {sort}"
    print(f"\nsweep {sweep_id}: {n - len(failed)} of {n} jobs finished, best first{by}:")
    print(report.format_table(table, "table"))
    if failed:
        print(f"\n{len(failed)} job(s) failed:\n  " + "\n  ".join(failed))
    if "tags.sl.exploded" in runs.columns:
        flagged = runs[(runs["tags.sl.exploded"] == "true") & (runs["status"] == "FINISHED")]
        lines = [
            f"{r.run_id[:8]} {r.run_name}: {r['tags.sl.explosion']}" for _, r in flagged.iterrows()
        ]
        if lines:
            print(f"\n{len(lines)} job(s) finished but exploded:\n  " + "\n  ".join(lines))
    if log_best_model:
        _log_best_model(uri, report.ranked_runs(runs, sort=sort))
    try:
        paths = write_sweep_report(uri, runs, report_dir, table=table, metric=sort)
        run_writes.log_files(uri, parent_run_id, paths, "sweep")
    except Exception as err:  # the pictures are extra: the sweep's runs stand without them
        log.warning(
            "sweep %s: could not write or log the sweep pictures in %s: %s: %s",
            sweep_id,
            report_dir,
            type(err).__name__,
            err,
        )
    else:
        names = ", ".join(p.name for p in paths)
        print(f"\nsweep pictures: {report_dir}/ ({names}; on the parent run under sweep/)")
    sort_flag = "" if sort == "test/error" else f" --sort {sort}"
    print(
        f"\ncompare again: softmax-lab compare --experiment {experiment} --sweep {sweep_id}"
        f"{sort_flag}\nopen the UI:   softmax-lab ui   (then open experiment '{experiment}')"
    )
