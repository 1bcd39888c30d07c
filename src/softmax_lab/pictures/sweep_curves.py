"""The overlaid curves of ``pictures.sweep_pictures`` drawn on a ``pictures.raster`` canvas.

Every run's curve of one metric over the epochs, ranked best first, with a legend of the best
(``draw_overlay``). Like the pictures of ``pictures.sweep_drawing``, whose text sizes and
titles it shares, it returns the canvas, which the caller saves with the returned palette
while it holds ``DRAWING``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from softmax_lab.pictures.axes import EpochPanel, draw_axes, draw_markers, draw_series
from softmax_lab.pictures.raster import (
    GREYS,
    TAB10,
    VIRIDIS,
    Colour,
    Palette,
    blank,
    draw_text,
    fit_text,
    palette,
    tints,
)
from softmax_lab.pictures.sweep_drawing import LABEL, SMALL, _title

__all__ = ["draw_overlay"]


def draw_overlay(
    ranked: list[tuple[str, NDArray[np.float64]]],
    *,
    ylabel: str,
    max_legend: int,
    title: str,
) -> tuple[Image.Image, Palette]:
    """Every run's (epoch, value) points (E, 2) as a line with markers, on a 900 × 500 canvas.

    ``ranked`` runs best first: the first 10 take matplotlib's colours C0 … C9 when there are
    no more, else all are coloured by rank (viridis, dark = first); the first are drawn last, on
    top. The legend, right of the axes, names the first ``max_legend`` (fewer when they do not
    fit its height, in rows of at least 12 px).
    """
    n = len(ranked)
    colours: list[Colour] = [
        TAB10[r] if n <= 10 else tuple(VIRIDIS[min(int(0.9 * r / (n - 1) * 256), 255)].tolist())
        for r in range(n)
    ]
    canvas = blank(900, 500)
    box = x0, y0, x1, y1 = 75, (40 if title else 20), 635, 445
    w, h = x1 - x0, y1 - y0
    points = np.concatenate([p for _, p in ranked])  # (P, 2)
    plot = EpochPanel.over(points[:, 0], points[:, 1], w, h, xticks=10)
    for (_, arr), colour in reversed(list(zip(ranked, colours, strict=True))):
        draw_series(plot.draw, plot.at(arr[:, 0], arr[:, 1]), colour, width=4, marker=9)
    xticks, yticks = plot.paste(canvas, box)
    draw_axes(
        canvas,
        box,
        xticks=xticks,
        yticks=yticks,
        xlabel="epoch",
        ylabel=fit_text(ylabel, h, LABEL, smallest=LABEL)[0],
    )
    if title:
        _title(canvas, title, (x0 + x1) / 2, w + 100, y=y0 - 28)
    if max_legend > 0:
        _draw_legend(canvas, [name for name, _ in ranked], colours, max_legend, (650, y0, 895, y1))
    return canvas, _overlay_palette(colours)


def _draw_legend(
    canvas: Image.Image,
    names: list[str],
    colours: list[Colour],
    max_legend: int,
    box: tuple[int, int, int, int],
) -> None:
    """A heading ("20 lowest of 28 runs") and a row per run: a line sample and its name."""
    x0, y0, x1, y1 = box
    n = len(names)
    shown = min(n, max_legend, (y1 - y0) // 12 - 1)
    row = min(17.0, (y1 - y0) / (shown + 1))
    # the samples drawn at 2× and halved, as the lines are
    strip = blank(2 * 32, 2 * (y1 - y0))
    draw = ImageDraw.Draw(strip)
    for k in range(shown):
        sample = np.array([[8.0, (2 * k + 3) * row], [56.0, (2 * k + 3) * row]])  # 2× px
        draw_series(draw, sample, colours[k], width=4)
        draw_markers(draw, sample.mean(axis=0, keepdims=True), colours[k], size=9)
    canvas.paste(strip.reduce(2), (x0, y0))
    heading = f"{n} runs" if shown == n else f"{shown} lowest of {n} runs"
    draw_text(canvas, (x0 + 4, y0 + row / 2), heading, size=SMALL, anchor="lm")
    for k, name in enumerate(names[:shown]):
        short = name if len(name) <= 40 else name[:39] + "…"
        label = fit_text(short, x1 - x0 - 36, SMALL, smallest=SMALL)[0]
        draw_text(canvas, (x0 + 36, y0 + (k + 1.5) * row), label, size=SMALL, anchor="lm")


def _overlay_palette(colours: list[Colour]) -> Palette:
    """Greys, and each line colour with its blends into white, or (over 48 colours) viridis."""
    distinct = np.unique(np.array(colours, dtype=np.uint8), axis=0)  # (D, 3)
    if len(distinct) > 48:
        return palette(GREYS, VIRIDIS[::2], VIRIDIS[255:])
    k = 192 // len(distinct)
    return palette(GREYS, *(tints((int(r), int(g), int(b)), k) for r, g, b in distinct))
