"""Axes on a ``pictures.raster`` canvas: data limits and where the ticks go and what they say,
frames with labelled ticks, colourbars, lines with markers, and the gridded panel of values over
epochs that the learning curves are drawn on.

Lines are meant to be drawn on a panel at twice the size and halved (``Image.reduce(2)``),
which antialiases them; widths and marker sizes are given in the panel's pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from softmax_lab.pictures.raster import BLACK, Box, Colour, blank, draw_text, fit_text, text_size

__all__ = [
    "GRID",
    "PAD",
    "TICK",
    "EpochPanel",
    "Ticks",
    "draw_axes",
    "draw_colourbar",
    "draw_grid",
    "draw_markers",
    "draw_polyline",
    "draw_series",
    "fit_tick_labels",
    "format_ticks",
    "limits",
    "nice_ticks",
]

Ticks: TypeAlias = tuple[Sequence[float] | NDArray[np.float64], Sequence[str]]  # px, labels

TICK, PAD = 5, 4  # tick length and tick-to-label gap, px
GRID: Colour = (232, 232, 232)  # grid lines: matplotlib's grey grid at alpha 0.3, on white


# ---------------------------------------------------------------------------------------------
# limits and ticks: pure functions of numbers and strings (label widths from ``raster.text_size``)


def limits(values: NDArray[np.float64]) -> tuple[float, float]:
    """The range of the finite ``values`` with 5 % margins; ±5 % around a single value."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo <= 1e-9 * abs(lo):
        half = 0.05 * abs(lo) or 0.5
        return lo - half, hi + half
    return lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)


def nice_ticks(lo: float, hi: float, *, n: int = 6, integer: bool = False) -> NDArray[np.float64]:
    """Ticks in [lo, hi] (lo < hi) at multiples of 1, 2 or 5 × 10^e: at most n + 1 of them.

    ``integer`` keeps the step whole (epochs).
    """
    raw = (hi - lo) / max(n, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * (1 - 1e-9))
    if integer:
        step = max(round(step), 1)
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    ticks = np.arange(first, last + 1, dtype=np.float64) * step
    ticks[np.abs(ticks) < step * 1e-9] = 0.0  # no "−0.0"
    return ticks


def format_ticks(ticks: NDArray[np.float64]) -> list[str]:
    """Labels with the decimals the tick step needs and a true minus sign; 3 significant
    digits for large numbers or tiny steps."""
    if ticks.size == 0:
        return []
    step = float(np.min(np.diff(ticks))) if ticks.size > 1 else abs(float(ticks[0])) or 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    short = decimals > 5 or float(np.max(np.abs(ticks))) >= 1e5
    labels = [f"{t:.3g}" if short else f"{t:.{decimals}f}" for t in ticks]
    return [label.replace("-", "−") for label in labels]


def fit_tick_labels(
    labels: Sequence[str], room: float, *, size: int = 14, smallest: int = 10, thin: bool = False
) -> tuple[list[str], int, int]:
    """Make side-by-side tick labels fit ``room`` pixels each: ``(labels, size, every)``.

    The largest size from ``size`` down to ``smallest`` at which the widest label fits; failing
    that, at ``smallest``, a label on every ``every``-th tick only (``thin``, for many ticks) or
    each label shortened with "…".
    """

    def widest(s: int) -> int:
        return max((text_size(label, s)[0] for label in labels), default=0)

    for s in range(size, smallest - 1, -1):
        if widest(s) <= room:
            return list(labels), s, 1
    if thin:
        return list(labels), smallest, math.ceil((widest(smallest) + 6) / max(room, 1))
    return [fit_text(label, room, smallest, smallest=smallest)[0] for label in labels], smallest, 1


# ---------------------------------------------------------------------------------------------
# frames and colourbars


def draw_axes(
    canvas: Image.Image,
    box: Box,
    *,
    xticks: Ticks = ((), ()),
    yticks: Ticks = ((), ()),
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    size: int = 14,
    tick_size: int | None = None,
    ytick_size: int | None = None,
) -> None:
    """Frame ``box``; outward ticks at pixel positions, labelled; axis labels and a title.

    Text is ``size`` px (titles 3 more), tick labels ``tick_size`` (default ``size``), the y
    ones ``ytick_size`` (default ``tick_size``). The y label keeps 8 px off the widest y tick
    label; the x label sits below the tick labels.
    """
    tick_size = tick_size or size
    ytick_size = ytick_size or tick_size
    x0, y0, x1, y1 = box
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((x0 - 1, y0 - 1, x1, y1), outline=BLACK)
    for px, label in zip(*xticks, strict=True):
        draw.line((round(px), y1, round(px), y1 + TICK), fill=BLACK)
        draw_text(canvas, (px, y1 + TICK + PAD), label, size=tick_size, anchor="mt")
    left = x0
    for py, label in zip(*yticks, strict=True):
        draw.line((x0 - 1 - TICK, round(py), x0 - 1, round(py)), fill=BLACK)
        text_box = draw_text(canvas, (x0 - TICK - PAD, py), label, size=ytick_size, anchor="rm")
        left = min(left, text_box[0])
    if xlabel:
        below = y1 + TICK + PAD + (tick_size + 5 if len(xticks[0]) else 0)
        draw_text(canvas, ((x0 + x1) / 2, below), xlabel, size=size, anchor="mt")
    if ylabel:
        at = (max(left - 8, size + 2), (y0 + y1) / 2)
        draw_text(canvas, at, ylabel, size=size, anchor="md", vertical=True)
    if title:
        draw_text(canvas, ((x0 + x1) / 2, y0 - 8), title, size=size + 3, anchor="md")


def draw_colourbar(
    canvas: Image.Image,
    box: Box,
    lut: NDArray[np.uint8],
    lo: float,
    hi: float,
    *,
    label: str = "",
    size: int = 13,
) -> None:
    """A vertical colour bar for ``lut`` over [lo, hi] (hi at the top), ticks on its right."""
    x0, y0, x1, y1 = box
    ramp = lut[np.round(np.linspace(255, 0, y1 - y0)).astype(np.intp)]  # (h, 3)
    canvas.paste(Image.fromarray(np.repeat(ramp[:, None], x1 - x0, axis=1)), (x0, y0))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((x0 - 1, y0 - 1, x1, y1), outline=BLACK)
    ticks = nice_ticks(lo, hi, n=max(2, min(8, (y1 - y0) // 30)))
    right = x1
    for t, text in zip(ticks, format_ticks(ticks), strict=True):
        py = round(y1 - 1 - (t - lo) / (hi - lo) * (y1 - y0 - 1))
        draw.line((x1, py, x1 + TICK, py), fill=BLACK)
        right = max(
            right, draw_text(canvas, (x1 + TICK + PAD, py), text, size=size, anchor="lm")[2]
        )
    if label:
        draw_text(canvas, (right + 6, (y0 + y1) / 2), label, size=size, anchor="mt", vertical=True)


# ---------------------------------------------------------------------------------------------
# lines


def draw_grid(
    draw: ImageDraw.ImageDraw,
    xs: NDArray[np.float64],
    ys: NDArray[np.float64],
    extent: tuple[int, int],
    *,
    width: int = 2,
    colour: Colour = GRID,
) -> None:
    """Grid lines ``width`` px thick across a (w, h) ``extent`` from the origin, at pixel
    positions ``xs`` (vertical lines) and ``ys`` (horizontal)."""
    w, h = extent
    for px in np.round(xs).astype(int).tolist():
        draw.rectangle((px, 0, px + width - 1, h), fill=colour)
    for py in np.round(ys).astype(int).tolist():
        draw.rectangle((0, py, w, py + width - 1), fill=colour)


def draw_polyline(
    draw: ImageDraw.ImageDraw,
    points: NDArray[np.float64],
    colour: Colour,
    *,
    width: int,
    dash: tuple[float, float] | None = None,
) -> None:
    """A line through ``points`` (shape (p, 2), x and y), solid or ``dash = (on, off)``."""
    if len(points) < 2:
        return
    if dash is None:
        draw.line(points.ravel().tolist(), fill=colour, width=width, joint="curve")
        return
    on, off = dash
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])  # arc length
    starts = np.arange(0.0, s[-1], on + off)  # (D,)
    ends = np.minimum(starts + on, s[-1])
    at = np.concatenate([starts, ends])
    xy = np.stack([np.interp(at, s, points[:, 0]), np.interp(at, s, points[:, 1])], 1).tolist()
    first, last = np.searchsorted(s, starts, "right").tolist(), np.searchsorted(s, ends).tolist()
    vertices = points.tolist()
    for k, (i, j) in enumerate(zip(first, last, strict=True)):  # it bends at vertices it spans
        dash_xy = [xy[k], *vertices[i:j], xy[k + len(starts)]]
        draw.line([v for p in dash_xy for v in p], fill=colour, width=width, joint="curve")


def draw_markers(
    draw: ImageDraw.ImageDraw,
    points: NDArray[np.float64],
    colour: Colour,
    *,
    size: float,
    square: bool = False,
) -> None:
    """Filled circles (or squares) ``size`` pixels across centred on ``points`` (p, 2)."""
    r = size / 2
    shape = draw.rectangle if square else draw.ellipse
    for x, y in points.tolist():
        shape((x - r, y - r, x + r, y + r), fill=colour)


def draw_series(
    draw: ImageDraw.ImageDraw,
    points: NDArray[np.float64],
    colour: Colour,
    *,
    width: int,
    dash: tuple[float, float] | None = None,
    marker: float = 0.0,
    square: bool = False,
) -> None:
    """A line through ``points`` (p, 2) with a gap at each row holding a non-finite value, and
    markers ``marker`` px across at the finite points (none when 0)."""
    ok = np.isfinite(points).all(axis=1)
    kept = np.flatnonzero(ok)
    # consecutive finite points make one line
    for run in np.split(kept, np.flatnonzero(np.diff(kept) > 1) + 1):
        draw_polyline(draw, points[run], colour, width=width, dash=dash)
    if marker:
        draw_markers(draw, points[ok], colour, size=marker, square=square)


@dataclass
class EpochPanel:
    """A w × h plot of values over epochs, drawn at 2× (``panel``, gridded) to be halved.

    Built by ``EpochPanel.over``; ``at`` maps data to the panel's pixels, ``paste`` puts the
    halved panel on the canvas, and ``xticks``/``yticks`` are the ticks for ``draw_axes``.
    """

    panel: Image.Image
    draw: ImageDraw.ImageDraw
    xlo: float
    yhi: float
    scale: tuple[float, float]  # 2× px per data unit, x and y
    xt: NDArray[np.float64]
    yt: NDArray[np.float64]
    xpx: NDArray[np.float64]  # tick positions in the 1× box
    ypx: NDArray[np.float64]

    @classmethod
    def over(
        cls, x: NDArray[np.float64], y: NDArray[np.float64], w: int, h: int, *, xticks: int
    ) -> EpochPanel:
        """The panel whose limits hold epochs ``x`` and values ``y``, with its grid drawn."""
        xlo, xhi = limits(x)
        if xhi - xlo < 1:  # one epoch: a unit range around it, one tick
            xlo, xhi = (xlo + xhi - 1) / 2, (xlo + xhi + 1) / 2
        ylo, yhi = limits(y)
        xt, yt = nice_ticks(xlo, xhi, n=xticks, integer=True), nice_ticks(ylo, yhi, n=8)
        xpx, ypx = (xt - xlo) / (xhi - xlo) * w, (yhi - yt) / (yhi - ylo) * h  # (T,) in the box
        # drawn at 2× and halved: the 2×2 average antialiases the lines and markers
        panel = blank(2 * w, 2 * h)
        draw = ImageDraw.Draw(panel)
        draw_grid(draw, 2 * xpx, 2 * ypx, panel.size)
        scale = (2 * w / (xhi - xlo), 2 * h / (yhi - ylo))
        return cls(panel, draw, xlo, yhi, scale, xt, yt, xpx, ypx)

    def at(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
        """(E, 2) panel pixels of the points (x, y), from the top-left."""
        return np.stack([x - self.xlo, self.yhi - y], axis=1) * self.scale

    def paste(self, canvas: Image.Image, box: Box) -> tuple[Ticks, Ticks]:
        """Halve the panel into ``box`` on ``canvas``; return the (x, y) ticks for the box."""
        x0, y0 = box[0], box[1]
        canvas.paste(self.panel.reduce(2), (x0, y0))
        return (x0 + self.xpx, format_ticks(self.xt)), (y0 + self.ypx, format_ticks(self.yt))
