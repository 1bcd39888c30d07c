"""Pictures of sweeps, written as PNG files for the tracking UI: what they show.

A metric over the swept parameters (``plot_sweep_heatmap``, the axes picked by ``choose_axes``)
and every run's curve overlaid (``plot_overlaid_curves``). Here the parameters' levels are
sorted, the runs aggregated per cell or ranked; ``pictures.sweep_drawing`` (heatmaps, bars)
and ``pictures.sweep_curves`` draw them with Pillow and NumPy, no matplotlib, so the same
input gives the same bytes. A run's own pictures (curves, templates, confusion matrix) are in
``softmax_lab.pictures.run_plots``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from softmax_lab.pictures.raster import DRAWING, save_png
from softmax_lab.pictures.sweep_curves import draw_overlay
from softmax_lab.pictures.sweep_drawing import draw_bars, draw_heatmaps

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["choose_axes", "plot_overlaid_curves", "plot_sweep_heatmap"]

PathLike: TypeAlias = str | os.PathLike[str]
MISSING_LABEL = "—"  # tick label of a parameter value that is missing (NaN/None) in a sweep


def choose_axes(
    df: pd.DataFrame, metric: str = "test/error", *, params: Sequence[str] | None = None
) -> tuple[str | None, str | None, str | None]:
    """Pick the swept parameters a sweep picture shows: (x, y, facet).

    A parameter is swept when it takes more than one distinct value (NaN counts as a value).
    The swept ones are ranked by their number of distinct values, ties in column order; x gets
    the most, then y, then facet.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per run.
    metric : str
        The metric column; never a parameter.
    params : sequence of str, optional
        The parameter columns; default every column but ``metric``. Pass it when ``df`` carries
        other columns (run ids, other metrics).

    Returns
    -------
    (x, y, facet) : three column names or None
        ``(None, None, None)`` when nothing is swept, ``(p, None, None)`` for one swept
        parameter, ``(p, q, None)`` for two.

    Raises
    ------
    ValueError
        When ``metric`` or a param is not a column, or more than three parameters are swept.
    """
    columns = list(df.columns)
    if metric not in columns:
        raise ValueError(f"metric {metric!r} is not a column of df; columns: {columns}")
    candidates = [c for c in columns if c != metric] if params is None else list(params)
    unknown = [p for p in candidates if p not in columns or p == metric]
    if unknown:
        raise ValueError(f"params {unknown} are not parameter columns of df; columns: {columns}")
    distinct = {p: int(df[p].nunique(dropna=False)) for p in candidates}
    swept = sorted((p for p in candidates if distinct[p] > 1), key=lambda p: -distinct[p])
    if len(swept) > 3:
        raise ValueError(
            f"{len(swept)} parameters are swept ({', '.join(swept)}) but a sweep picture shows at "
            "most 3 (x, y, facet); pass params=[...] or filter df"
        )
    x, y, facet = [*swept, None, None, None][:3]
    return x, y, facet


def _levels(df: pd.DataFrame, column: str | None) -> tuple[list[str], NDArray[np.intp]]:
    """Sorted tick labels of a parameter column and each row's index into them.

    Numbers (and numeric strings, as MLflow stores params) sort by value, other values by text,
    missing values last as ``MISSING_LABEL``. ``None`` gives one empty level.
    """
    if column is None:
        return [""], np.zeros(len(df), dtype=np.intp)
    import pandas as pd

    def label(v: Any) -> str:
        if pd.isna(v):
            return MISSING_LABEL
        if isinstance(v, bool | np.bool_ | str):
            return str(v)
        return f"{v:g}" if isinstance(v, int | float | np.number) else str(v)

    def key(v: Any) -> tuple[int, float, str]:
        if pd.isna(v):
            return (2, 0.0, "")
        try:
            number = float(v)
        except (TypeError, ValueError):
            return (1, 0.0, str(v))
        return (0, number, "") if not math.isnan(number) else (2, 0.0, "")

    values = df[column].tolist()
    labels = [label(v) for v in values]
    first = dict(zip(labels, values, strict=True))  # label -> a value carrying it
    ordered = sorted(first, key=lambda lab: key(first[lab]))
    index = {lab: i for i, lab in enumerate(ordered)}
    return ordered, np.array([index[lab] for lab in labels], dtype=np.intp)


def plot_sweep_heatmap(
    df: pd.DataFrame,
    path: PathLike,
    *,
    metric: str = "test/error",
    params: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """A sweep's metric over its swept parameters, each cell annotated with its value.

    The axes come from ``choose_axes``: a heatmap of x by y, one panel per value of a third swept
    parameter (shared colour scale, one colourbar); with one swept parameter a bar chart; with
    none a single cell. Runs sharing a cell are averaged (non-finite values skipped; a cell with
    runs but no finite value reads "nan"); combinations without runs stay blank.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per run: parameter columns (``optim.lr``, ``model.name``, …) and ``metric``.
    path : str or path-like
        Where the PNG goes; the size grows with the number of levels and panels.
    metric : str
        Numeric column to show.
    params : sequence of str, optional
        Parameter columns; default every column but ``metric`` (see ``choose_axes``).
    title : str, optional
        Figure title; default the metric and the number of runs.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    t0 = time.perf_counter()
    if len(df) == 0:
        raise ValueError("df has no rows: a sweep picture needs at least one run")
    x, y, facet = choose_axes(df, metric, params=params)
    try:
        value = df[metric].to_numpy(dtype=np.float64, na_value=np.nan)  # (m,)
    except (TypeError, ValueError) as e:
        raise ValueError(f"metric column {metric!r} must be numeric: {e}") from e
    (xl, xi), (yl, yi), (fl, fi) = _levels(df, x), _levels(df, y), _levels(df, facet)
    F, Y, X = len(fl), len(yl), len(xl)
    # aggregate per (facet, y, x) cell with bincount: runs, finite runs, sum of finite values
    cell = (fi * Y + yi) * X + xi
    ok = np.isfinite(value)
    runs = np.bincount(cell, minlength=F * Y * X).reshape(F, Y, X)
    n_ok = np.bincount(cell[ok], minlength=F * Y * X).reshape(F, Y, X)
    sums = np.bincount(cell[ok], weights=value[ok], minlength=F * Y * X).reshape(F, Y, X)
    mean = np.divide(sums, n_ok, out=np.full(sums.shape, np.nan), where=n_ok > 0)  # (F, Y, X)
    # one number of decimals for every cell: 3 significant digits of the largest value
    finite = np.abs(mean[np.isfinite(mean)])
    top = float(finite.max()) if finite.size else 0.0
    decimals = max(0, 2 - math.floor(math.log10(top))) if top > 0 else 3
    text = np.where(
        n_ok > 0, np.vectorize(lambda v: f"{v:.{decimals}f}", otypes=[str])(mean), "nan"
    )
    text[runs == 0] = ""
    title = title or f"{metric} over {len(df)} run{'s' if len(df) > 1 else ''}"
    with DRAWING:
        if x is not None and y is None:
            canvas, colours = draw_bars(xl, mean[0, 0], text[0, 0], x=x, metric=metric, title=title)
        else:
            canvas, colours = draw_heatmaps(
                mean, text, (xl, yl, fl), (x, y, facet), metric=metric, title=title
            )
        return save_png(canvas, path, colours, started=t0)


def plot_overlaid_curves(
    curves: Mapping[str, Sequence[tuple[int, float]]],
    path: PathLike,
    *,
    ylabel: str = "test error",
    max_legend: int = 20,
    title: str | None = None,
) -> Path:
    """Every run's curve on one axes, e.g. the test error of each run of a sweep.

    Runs are ranked by their last finite value (lowest first, non-finite last) and the lowest
    drawn on top. Up to 10 runs get matplotlib's usual distinct colours; more are coloured by
    rank (viridis, dark = lowest). The legend lists the ``max_legend`` lowest-ranked runs (fewer
    when they do not fit beside the axes: 32 with a title) and says how many there are in all.

    Parameters
    ----------
    curves : mapping of run name to a sequence of (epoch, value) pairs
        An empty sequence (a run that diverged in epoch 1) draws nothing but keeps its name.
    path : str or path-like
        Where the PNG goes (900 × 500 pixels).
    ylabel : str
        The y-axis label.
    max_legend : int
        Most legend entries; names longer than 40 characters, or than the legend's width, are
        shortened with "…".
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    t0 = time.perf_counter()
    if not curves:
        raise ValueError("curves is empty: plot_overlaid_curves needs at least one run")
    if max_legend < 0:
        raise ValueError(f"max_legend must be >= 0, got {max_legend}")
    points: dict[str, NDArray[np.float64]] = {}
    for name, pairs in curves.items():
        arr = np.asarray(pairs, dtype=np.float64)
        if arr.size == 0:
            arr = arr.reshape(0, 2)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(
                f"curves[{name!r}] must be a sequence of (epoch, value) pairs; "
                f"got an array of shape {arr.shape}"
            )
        points[name] = arr  # (E, 2)

    def last_finite(arr: NDArray[np.float64]) -> float:
        finite = arr[np.isfinite(arr[:, 1]), 1]
        return float(finite[-1]) if finite.size else math.inf

    ranked = sorted(points, key=lambda name: last_finite(points[name]))
    with DRAWING:
        canvas, colours = draw_overlay(
            [(name, points[name]) for name in ranked],
            ylabel=ylabel,
            max_legend=max_legend,
            title=title or "",
        )
        return save_png(canvas, path, colours, started=t0)
