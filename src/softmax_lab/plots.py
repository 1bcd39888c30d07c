"""Pictures of sweeps, written as PNG files for the tracking UI, drawn with matplotlib.

A metric over the swept parameters (``plot_sweep_heatmap``, the axes picked by ``choose_axes``)
and every run's curve overlaid (``plot_overlaid_curves``). A run's own pictures (curves,
templates, confusion matrix) are drawn without matplotlib by ``softmax_lab.run_plots``.

Drawing uses matplotlib's object API on an Agg canvas: no pyplot and no backend switch, so a
notebook's backend is untouched. Each picture is drawn under matplotlib's default style (a
notebook's rcParams do not leak in), so the same input gives the same bytes. Matplotlib takes
~0.5 s to import, so it is imported inside the drawing functions: ``import softmax_lab.plots``
and ``choose_axes`` never load it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

__all__ = ["choose_axes", "plot_overlaid_curves", "plot_sweep_heatmap"]

logger = logging.getLogger(__name__)

PathLike: TypeAlias = str | os.PathLike[str]
DPI = 100
MISSING_LABEL = "—"  # tick label of a parameter value that is missing (NaN/None) in a sweep


# ---------------------------------------------------------------------------------------------
# figure plumbing

# A fixed title height: else every draw measures all tick labels to place the titles (~15 ms/axes)
_RC = {"axes.titley": 1.0}


@contextmanager
def _default_style() -> Iterator[None]:
    """Draw under matplotlib's default rcParams, whatever style the caller's session set."""
    import matplotlib.style

    with matplotlib.style.context(["default", _RC]):
        yield


def _new_figure(width: int, height: int, *, layout: Literal["constrained"] | None = None) -> Figure:
    """An empty figure of exactly ``width`` × ``height`` pixels on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # +0.25 px: Agg truncates the size to whole pixels, and e.g. 0.29 * 100 == 28.999999999999996
    fig = Figure(figsize=((width + 0.25) / DPI, (height + 0.25) / DPI), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _add_axes_px(fig: Figure, left: int, bottom: int, width: int, height: int) -> Axes:
    """Axes at a rectangle given in pixels from the figure's lower-left corner."""
    W, H = fig.bbox.width, fig.bbox.height
    return fig.add_axes((left / W, bottom / H, width / W, height / H))


# The lock serialises all drawing here: rcParams (the style) are shared state.
_DRAWING_LOCK = threading.Lock()


def _save(fig: Figure, path: PathLike, t0: float) -> Path:
    out = Path(path)
    # zlib level 1: half the encoding time of the default 6, for files ~20 % larger
    fig.savefig(out, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    logger.debug("wrote %s in %.0f ms", out, (time.perf_counter() - t0) * 1e3)
    return out


def _text_colour(cmap: Colormap, fraction: float) -> str:
    """Black or white, whichever reads better on ``cmap(fraction)``."""
    r, g, b, _ = cmap(fraction)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


# ---------------------------------------------------------------------------------------------
# per sweep


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
    with _DRAWING_LOCK, _default_style():
        if x is not None and y is None:
            return _draw_bars(xl, mean[0, 0], text[0, 0], x, metric, title, path, t0)
        return _draw_heatmaps(mean, text, (xl, yl, fl), (x, y, facet), metric, title, path, t0)


def _draw_bars(
    levels: list[str],
    mean: NDArray[np.float64],
    text: NDArray[np.str_],
    x: str,
    metric: str,
    title: str,
    path: PathLike,
    t0: float,
) -> Path:
    """One swept parameter: a bar per level, height the metric, value written on top."""
    n = len(levels)
    fig = _new_figure(min(max(60 * n + 160, 500), 1400), 420, layout="constrained")
    ax = fig.add_subplot()
    heights = np.nan_to_num(mean, nan=0.0)
    ax.bar(range(n), heights, color="C0")
    for j in range(n):
        ax.annotate(
            str(text[j]),
            (j, heights[j]),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    rotate = max(map(len, levels)) > 6 and n > 4
    ax.set_xticks(
        range(n), levels, rotation=30 if rotate else 0, ha="right" if rotate else "center"
    )
    ax.set(xlabel=x, ylabel=metric, title=title)
    ax.margins(y=0.12)
    return _save(fig, path, t0)


def _draw_heatmaps(
    mean: NDArray[np.float64],
    text: NDArray[np.str_],
    levels: tuple[list[str], list[str], list[str]],
    names: tuple[str | None, str | None, str | None],
    metric: str,
    title: str,
    path: PathLike,
    t0: float,
) -> Path:
    """x by y heatmaps, one panel per facet level, one shared colour scale."""
    from matplotlib import colormaps

    (xl, yl, fl), (x, y, facet) = levels, names
    F, Y, X = mean.shape
    per_row = min(F, 4)
    n_rows = -(-F // per_row)
    panel_w, panel_h = min(max(70 * X, 220), 700) + 110, min(max(50 * Y, 200), 600) + 90
    fig = _new_figure(per_row * panel_w + 110, n_rows * panel_h + 40, layout="constrained")
    finite = mean[np.isfinite(mean)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:  # one value (or none): any non-empty range draws it mid-scale
        lo, hi = lo - 0.5, hi + 0.5
    cmap = colormaps["viridis"].with_extremes(bad="white")
    size = 8 if X <= 10 else 6
    axes, im = [], None
    for f in range(F):
        ax = fig.add_subplot(n_rows, per_row, f + 1)
        axes.append(ax)
        im = ax.imshow(
            mean[f],
            cmap=cmap,
            vmin=lo,
            vmax=hi,
            origin="lower",
            aspect="auto",
            interpolation="none",
        )
        if X <= 30:
            for (i, j), s in np.ndenumerate(text[f]):
                if s:
                    fraction = (mean[f, i, j] - lo) / (hi - lo)
                    colour = "black" if s == "nan" else _text_colour(cmap, fraction)  # nan: white
                    ax.text(j, i, s, ha="center", va="center", fontsize=size, color=colour)
        rotate = X > 4 and max(map(len, xl)) > 5
        ax.set_xticks(
            range(X), xl, rotation=30 if rotate else 0, ha="right" if rotate else "center"
        )
        ax.set_yticks(range(Y), yl)
        if x is None:  # nothing swept: one cell, no ticks
            ax.set(xticks=[], yticks=[])
        ax.set(xlabel=x or "", ylabel=y or "", title=f"{facet} = {fl[f]}" if facet else "")
    assert im is not None  # F >= 1: _levels always returns at least one level
    fig.colorbar(im, ax=axes, label=metric)
    fig.suptitle(title)
    return _save(fig, path, t0)


def plot_overlaid_curves(
    curves: Mapping[str, Sequence[tuple[int, float]]],
    path: PathLike,
    *,
    ylabel: str = "test error",
    max_legend: int = 20,
    title: str | None = None,
) -> Path:
    """Every run's curve on one axes, e.g. the test error of each run of a sweep.

    Runs are ranked by their last finite value (lowest first, non-finite last). Up to 10 runs
    get the usual distinct colours; more are coloured by rank (viridis, dark = lowest). The
    legend lists the ``max_legend`` lowest-ranked runs and says how many there are in all.

    Parameters
    ----------
    curves : mapping of run name to a sequence of (epoch, value) pairs
        An empty sequence (a run that diverged in epoch 1) draws nothing but keeps its name.
    path : str or path-like
        Where the PNG goes (900 × 500 pixels).
    ylabel : str
        The y-axis label.
    max_legend : int
        Most legend entries; names longer than 40 characters are shortened.
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
    n = len(ranked)
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    with _DRAWING_LOCK, _default_style():
        fig = _new_figure(900, 500)
        ax = _add_axes_px(fig, 75, 55, 560, 500 - 55 - (40 if title else 20))
        for rank, name in enumerate(ranked):
            colour = f"C{rank}" if n <= 10 else colormaps["viridis"](0.9 * rank / (n - 1))
            short = name if len(name) <= 40 else name[:39] + "…"
            label = short if rank < max_legend else "_nolegend_"
            arr = points[name]
            ax.plot(arr[:, 0], arr[:, 1], "o-", ms=3, lw=1.2, color=colour, label=label)
        ax.set(xlabel="epoch", ylabel=ylabel, title=title or "")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if max_legend > 0:
            shown = min(n, max_legend)
            heading = f"{n} runs" if shown == n else f"{shown} lowest of {n} runs"
            ax.legend(
                loc="upper left",
                bbox_to_anchor=(1.02, 1.0),
                fontsize=8,
                title=heading,
                title_fontsize=8,
                frameon=False,
            )
        return _save(fig, path, t0)
