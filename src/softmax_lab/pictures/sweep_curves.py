"""Every run of a sweep's curve of one metric over the epochs, overlaid on one axes, as a PNG.

``plot_overlaid_curves`` ranks the runs by their last value; ``draw_overlay`` draws them on a
``pictures.raster`` canvas, best on top, with a legend of the best, and returns it with the
palette the caller saves it with while it holds ``DRAWING``. The same input gives the same bytes.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from softmax_lab.pictures.axes import EpochPanel, draw_axes, draw_markers, draw_series
from softmax_lab.pictures.raster import (
    DRAWING,
    GREYS,
    LABEL,
    SMALL,
    TAB10,
    VIRIDIS,
    Colour,
    Palette,
    blank,
    draw_text,
    draw_title,
    fit_text,
    palette,
    save_png,
    tints,
)

__all__ = ["draw_overlay", "plot_overlaid_curves"]

PathLike: TypeAlias = str | os.PathLike[str]


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
        draw_title(canvas, title, (x0 + x1) / 2, w + 100, y=y0 - 28)
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
