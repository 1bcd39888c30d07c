"""A sweep's metric over its swept parameters as a PNG: heatmaps, or a bar chart for one.

``plot_sweep_heatmap`` picks the axes (``choose_axes``: the swept parameters with the most
values), sorts each parameter's levels (``parameter_levels``) and averages the runs per cell;
``draw_heatmaps`` (panels sharing one colourbar) and ``draw_bars`` draw the aggregated arrays on
a ``pictures.raster`` canvas, which the caller saves with the returned palette while it holds
``DRAWING``. Label text that would not fit its room is set smaller, shown on every other tick,
or shortened with "…", so nothing overlaps whatever the parameter values; the same input gives
the same bytes.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from softmax_lab.pictures.axes import (
    draw_axes,
    draw_colourbar,
    fit_tick_labels,
    format_ticks,
    nice_ticks,
)
from softmax_lab.pictures.raster import (
    BLACK,
    DRAWING,
    GREYS,
    LABEL,
    SMALL,
    TAB10,
    TITLE,
    VIRIDIS,
    WHITE,
    Colour,
    Palette,
    blank,
    draw_text,
    draw_title,
    fit_text,
    ink_on,
    map_colours,
    palette,
    save_png,
    text_size,
    tints,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "cell_text_size",
    "choose_axes",
    "draw_bars",
    "draw_heatmaps",
    "parameter_levels",
    "plot_sweep_heatmap",
]

PathLike: TypeAlias = str | os.PathLike[str]
MISSING_LABEL = "—"  # tick label of a parameter value that is missing (NaN/None) in a sweep
HEAT_COLOURS = palette(GREYS, VIRIDIS[::2], VIRIDIS[255:])
BAR: Colour = TAB10[0]
BAR_COLOURS = palette(GREYS, tints(BAR, 32))


# ---------------------------------------------------------------------------------------------
# what it shows: the axes, each parameter's levels, the runs averaged per cell


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


def parameter_levels(df: pd.DataFrame, column: str | None) -> tuple[list[str], NDArray[np.intp]]:
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
    (xl, xi), (yl, yi), (fl, fi) = (parameter_levels(df, p) for p in (x, y, facet))
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


# ---------------------------------------------------------------------------------------------
# heatmaps


def draw_heatmaps(
    mean: NDArray[np.float64],
    text: NDArray[np.str_],
    levels: tuple[list[str], list[str], list[str]],
    names: tuple[str | None, str | None, str | None],
    *,
    metric: str,
    title: str,
) -> tuple[Image.Image, Palette]:
    """x by y heatmaps of ``mean`` (F, Y, X), one panel per facet level, up to 4 in a row,
    sharing a colour scale; each cell with its ``text`` (F, Y, X). NaN cells are white.

    The canvas is (panels in a row × (x cells' width + 110) + 110) by (rows of panels ×
    (y cells' height + 90) + 40) pixels, the cells 70 × 50 px (at least 220 × 200 and at most
    700 × 600 in all).
    """
    (xl, yl, fl), (x, y, facet) = levels, names
    F, Y, X = mean.shape
    per_row = min(F, 4)
    n_rows = -(-F // per_row)
    heat_w, heat_h = min(max(70 * X, 220), 700), min(max(50 * Y, 200), 600)
    panel_w, panel_h = heat_w + 110, heat_h + 90
    canvas = blank(per_row * panel_w + 110, n_rows * panel_h + 40)
    finite = mean[np.isfinite(mean)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:  # one value (or none): any non-empty range draws it mid-scale
        lo, hi = lo - 0.5, hi + 0.5
    # the y tick labels take up to 40 % of a panel; the cells give up the width they need
    # (the y label, 17 px, and the gaps take 40 px)
    ylabels, ysize, _ = fit_tick_labels(yl if y else [], 0.4 * panel_w - 40)
    widest = max((text_size(label, ysize)[0] for label in ylabels), default=0)
    left = max(98, 40 + widest) if y else 55
    w = panel_w - left - 12  # the cells' width
    cw, ch = w / X, heat_h / Y  # a cell's size, px
    xlabels, xsize, xevery = fit_tick_labels(xl if x else [], cw - 6, thin=X >= 8)
    yevery = math.ceil((ysize + 3) / ch)
    top = 30 if facet else 14 if x else 45  # room for the panel titles; one cell centred
    size = cell_text_size(text, cw, ch)
    # the panel titles, all in the size in which the longest fits (if any does)
    facet_titles = [f"{facet} = {level}" for level in fl]
    title_size = min(fit_text(t, w + 20, TITLE, smallest=12)[1] for t in facet_titles)
    for f in range(F):
        x0, y0 = f % per_row * panel_w + left, 40 + f // per_row * panel_h + top
        box = (x0, y0, x0 + w, y0 + heat_h)
        cells = map_colours(mean[f], VIRIDIS, lo, hi, bad=WHITE)  # (Y, X, 3), row 0 at the bottom
        pixels = Image.fromarray(np.ascontiguousarray(cells[::-1]))
        canvas.paste(pixels.resize((w, heat_h), Image.Resampling.NEAREST), (x0, y0))
        if size:
            black = ink_on(cells) | (text[f] == "nan")  # "nan" is on white
            for (i, j), s in np.ndenumerate(text[f]):
                if s:
                    at = (x0 + (j + 0.5) * cw, y0 + heat_h - (i + 0.5) * ch)
                    ink = BLACK if black[i, j] else WHITE
                    draw_text(canvas, at, str(s), size=size, fill=ink, anchor="mm")
        xs, ys = np.arange(0, X, xevery), np.arange(0, Y, yevery)
        draw_axes(
            canvas,
            box,
            xticks=(x0 + (xs + 0.5) * cw, xlabels[::xevery]) if x else ((), ()),
            yticks=(y0 + heat_h - (ys + 0.5) * ch, ylabels[::yevery]) if y else ((), ()),
            xlabel=fit_text(x, w, LABEL, smallest=LABEL)[0] if x else "",
            ylabel=fit_text(y, heat_h, LABEL, smallest=LABEL)[0] if y else "",
            tick_size=xsize,
            ytick_size=ysize,
        )
        if facet:
            draw_title(canvas, facet_titles[f], x0 + w / 2, w + 20, y=y0 - 26, size=title_size)
    bar_x = per_row * panel_w + 12
    bottom = 40 + (n_rows - 1) * panel_h + top + heat_h
    label = fit_text(metric, bottom - 40 - top, 13, smallest=13)[0]
    draw_colourbar(canvas, (bar_x, 40 + top, bar_x + 16, bottom), VIRIDIS, lo, hi, label=label)
    draw_title(canvas, title, canvas.width / 2, canvas.width - 20, y=8)
    return canvas, HEAT_COLOURS


def cell_text_size(text: NDArray[np.str_], cw: float, ch: float) -> int:
    """The size of the values written in the cells: 11 px, 8 px when they do not fit or the
    cells are many, 0 (none written) when they fit neither way."""
    strings = [str(s) for s in np.unique(text) if s]
    for size in (SMALL, 8) if text.shape[-1] <= 10 else (8,):
        widest = max((text_size(s, size)[0] for s in strings), default=0)
        if widest <= cw - 4 and size + 4 <= ch:
            return size
    return 0


# ---------------------------------------------------------------------------------------------
# bars


def draw_bars(
    levels: list[str],
    mean: NDArray[np.float64],
    text: NDArray[np.str_],
    *,
    x: str,
    metric: str,
    title: str,
) -> tuple[Image.Image, Palette]:
    """A bar per level (``mean`` and ``text`` of shape (L,)), its value written at its end; a NaN
    draws no bar. The canvas is 60 px per level + 160 (at least 500, at most 1400) by 420."""
    n = len(levels)
    canvas = blank(min(max(60 * n + 160, 500), 1400), 420)
    heights = np.nan_to_num(mean, nan=0.0)  # (L,)
    lo, hi = min(0.0, float(heights.min())), max(0.0, float(heights.max()))
    span = hi - lo or 1.0
    # 12 % margins beyond the bars' ends, none beyond their base at 0
    ylo, yhi = lo - 0.12 * span * (lo < 0), hi + 0.12 * span * (hi > 0 or lo == 0)
    yt = nice_ticks(ylo, yhi, n=8)
    ylabels = format_ticks(yt)
    left = 40 + max(text_size(label, LABEL)[0] for label in ylabels)
    box = x0, y0, x1, y1 = left, 40, canvas.width - 15, canvas.height - 50
    # bars 0.8 wide at 0 … n−1, with 5 % margins
    xlo, xhi = -0.4 - 0.05 * (n - 0.2), n - 0.6 + 0.05 * (n - 0.2)

    def px(v: float) -> float:
        return x0 + (v - xlo) / (xhi - xlo) * (x1 - x0)

    def py(v: float) -> float:
        return y1 - (v - ylo) / (yhi - ylo) * (y1 - y0)

    draw = ImageDraw.Draw(canvas)
    slot = (x1 - x0) / (xhi - xlo)  # px per level
    widest = max(text_size(str(s), SMALL)[0] for s in text)
    size = SMALL if widest <= 0.8 * slot else 8
    for j, (h, s) in enumerate(zip(heights.tolist(), text.tolist(), strict=True)):
        top, base = sorted((round(py(h)), round(py(0.0))))
        if math.isfinite(mean[j]):
            draw.rectangle((round(px(j - 0.4)), top, round(px(j + 0.4)) - 1, base - 1), fill=BAR)
        at = (px(j), py(h) - 3) if h >= 0 else (px(j), py(h) + 3)
        draw_text(canvas, at, str(s), size=size, anchor="md" if h >= 0 else "ma")
    xlabels, xsize, every = fit_tick_labels(levels, slot - 6, thin=n >= 8)
    xs = np.arange(0, n, every)
    draw_axes(
        canvas,
        box,
        xticks=([px(j) for j in xs.tolist()], xlabels[::every]),
        yticks=([py(t) for t in yt.tolist()], ylabels),
        xlabel=fit_text(x, x1 - x0, LABEL, smallest=LABEL)[0],
        ylabel=fit_text(metric, y1 - y0, LABEL, smallest=LABEL)[0],
        tick_size=xsize,
        ytick_size=LABEL,
    )
    centre = (x0 + x1) / 2
    draw_title(canvas, title, centre, 2 * (canvas.width - centre) - 20, y=8)
    return canvas, BAR_COLOURS
