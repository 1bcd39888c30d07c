"""The sweep pictures of ``pictures.sweep_pictures`` drawn on ``pictures.raster`` canvases.

Heatmap panels sharing one colourbar (``draw_heatmaps``) and a bar chart (``draw_bars``); the
overlaid curves are in ``softmax_lab.pictures.sweep_curves``, which shares the text sizes and titles
here. Each takes arrays already aggregated and returns the canvas, which the caller saves with
the returned palette while it holds ``DRAWING``. Label text that would not fit its room is set
smaller, shown on every other tick, or shortened with "…", so nothing overlaps whatever the
parameter values.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from softmax_lab.pictures.axes import draw_axes, draw_colourbar
from softmax_lab.pictures.raster import (
    BLACK,
    GREYS,
    TAB10,
    VIRIDIS,
    WHITE,
    Colour,
    Palette,
    blank,
    draw_text,
    fit_text,
    ink_on,
    map_colours,
    palette,
    text_size,
    tints,
)
from softmax_lab.pictures.ticks import fit_tick_labels, format_ticks, nice_ticks

__all__ = ["draw_bars", "draw_heatmaps"]

TITLE, LABEL, SMALL = 17, 14, 11  # px: titles; axis and tick labels; cell values and legend
HEAT_COLOURS = palette(GREYS, VIRIDIS[::2], VIRIDIS[255:])
BAR: Colour = TAB10[0]
BAR_COLOURS = palette(GREYS, tints(BAR, 32))


def _title(
    canvas: Image.Image, text: str, centre: float, room: float, *, y: int, size: int = TITLE
) -> None:
    """``text`` centred on x = ``centre`` with its top at ``y``, made to fit ``room`` px: set
    smaller, down to 12 px, then on two lines of 12 px (28 px in all), the second shortened."""
    smallest = min(size, 12)
    words = text.split(" ")
    if text_size(text, smallest)[0] <= room or len(words) == 1:
        text, size = fit_text(text, room, size, smallest=smallest)
        draw_text(canvas, (centre, y), text, size=size, anchor="ma")
        return
    cut = next(
        k
        for k in range(len(words) - 1, 0, -1)
        if text_size(" ".join(words[:k]), smallest)[0] <= room or k == 1
    )
    lines = (" ".join(words[:cut]), " ".join(words[cut:]))
    for row, line in enumerate(lines):
        line = fit_text(line, room, smallest, smallest=smallest)[0]
        draw_text(canvas, (centre, y + 14 * row), line, size=smallest, anchor="ma")


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
    size = _value_size(text, cw, ch)
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
            _title(canvas, facet_titles[f], x0 + w / 2, w + 20, y=y0 - 26, size=title_size)
    bar_x = per_row * panel_w + 12
    bottom = 40 + (n_rows - 1) * panel_h + top + heat_h
    label = fit_text(metric, bottom - 40 - top, 13, smallest=13)[0]
    draw_colourbar(canvas, (bar_x, 40 + top, bar_x + 16, bottom), VIRIDIS, lo, hi, label=label)
    _title(canvas, title, canvas.width / 2, canvas.width - 20, y=8)
    return canvas, HEAT_COLOURS


def _value_size(text: NDArray[np.str_], cw: float, ch: float) -> int:
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
    _title(canvas, title, centre, 2 * (canvas.width - centre) - 20, y=8)
    return canvas, BAR_COLOURS
