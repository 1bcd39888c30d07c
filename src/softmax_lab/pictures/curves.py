"""A run's learning curves as a PNG: loss and 0/1 error, train against test, per epoch.

Drawn with Pillow and NumPy (``pictures.raster``), 1000 × 400 pixels, in ~6 ms; the lines
are antialiased by drawing each panel at 2× and halving it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, TypeAlias

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from softmax_lab.pictures.axes import (
    EpochPanel,
    draw_axes,
    draw_markers,
    draw_polyline,
    draw_series,
)
from softmax_lab.pictures.raster import (
    DRAWING,
    GREYS,
    WHITE,
    Box,
    Colour,
    blank,
    draw_text,
    palette,
    save_png,
    tints,
)

__all__ = ["HISTORY_KEYS", "plot_curves"]

PathLike: TypeAlias = str | os.PathLike[str]
HISTORY_KEYS = ("epoch", "train_loss", "train_error", "test_loss", "test_error")


class _Style(NamedTuple):
    colour: Colour
    dash: tuple[float, float] | None  # (on, off) px at 2×; None: solid
    square: bool  # square markers, else round


TRAIN = _Style((31, 119, 180), None, False)  # matplotlib's C0 "o-"
TEST = _Style((255, 127, 14), (15.0, 7.0), True)  # C1 "s--"
LEGEND_W, LEGEND_H = 84, 44  # px
# what the picture is saved with: greys (text, frames, grid), the two colours and their blends
CURVES_COLOURS = palette(GREYS, tints(TRAIN.colour, 96), tints(TEST.colour, 96))


def plot_curves(
    history: Sequence[Mapping[str, float]], path: PathLike, *, title: str | None = None
) -> Path:
    """Learning curves: loss (train vs test) and 0/1 error (train vs test) per epoch.

    Parameters
    ----------
    history : sequence of mappings, one per epoch
        Each with keys ``epoch, train_loss, train_error, test_loss, test_error`` (float), e.g.
        ``[m.as_dict() for m in result.history]``. Non-finite values leave gaps.
    path : str or path-like
        Where the PNG goes (1000 × 400 pixels); its directory must exist.
    title : str, optional
        Figure title, e.g. the run name.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    t0 = time.perf_counter()
    if len(history) == 0:
        raise ValueError("history is empty: plot_curves needs at least one epoch")
    for i, row in enumerate(history):
        missing = [key for key in HISTORY_KEYS if key not in row]
        if missing:
            raise ValueError(
                f"history[{i}] lacks {', '.join(map(repr, missing))}; "
                f"each epoch needs keys {', '.join(HISTORY_KEYS)}"
            )
    col = {key: np.array([float(row[key]) for row in history]) for key in HISTORY_KEYS}  # (E,)
    top = 60 if title else 36
    with DRAWING:
        canvas = blank(1000, 400)
        for j, (what, ylabel) in enumerate((("loss", "mean softmax loss"), ("error", "0/1 error"))):
            box = (75 + 502 * j, top, 482 + 502 * j, 348)
            series = (col[f"train_{what}"], col[f"test_{what}"])
            _draw_curve_panel(canvas, box, col["epoch"], series, ylabel=ylabel, title=what)
        if title:
            draw_text(canvas, (500, 10), title, size=17, anchor="ma")
        return save_png(canvas, path, CURVES_COLOURS, started=t0)


def _draw_curve_panel(
    canvas: Image.Image,
    box: Box,
    x: NDArray[np.float64],
    series: tuple[NDArray[np.float64], NDArray[np.float64]],
    *,
    ylabel: str,
    title: str,
) -> None:
    """One axes: grid, train and test lines with markers, a legend, ticks and labels."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    plot = EpochPanel.over(x, np.concatenate(series), w, h, xticks=8)
    draw = plot.draw
    lines = []  # (E, 2) each, 2× px, NaN where a value is not finite
    for values, style in zip(series, (TRAIN, TEST), strict=True):
        points = plot.at(x, values)
        points[~np.isfinite(points).all(axis=1)] = np.nan
        lines.append(points)
        draw_series(
            draw, points, style.colour, width=4, dash=style.dash, marker=11, square=style.square
        )
    lx, ly = _legend_corner(lines, w, h)
    draw.rounded_rectangle(
        (2 * lx, 2 * ly, 2 * (lx + LEGEND_W), 2 * (ly + LEGEND_H)),
        radius=6,
        fill=WHITE,
        outline=(204, 204, 204),
        width=2,
    )
    for row, style in enumerate((TRAIN, TEST)):
        y = 2 * (ly + 12 + 20 * row)
        sample = np.array([[2 * lx + 12, y], [2 * lx + 68, y]], dtype=np.float64)
        draw_polyline(draw, sample, style.colour, width=4, dash=style.dash)
        draw_markers(
            draw, sample.mean(axis=0, keepdims=True), style.colour, size=11, square=style.square
        )
    xticks, yticks = plot.paste(canvas, box)
    for row, name in enumerate(("train", "test")):
        draw_text(canvas, (x0 + lx + 41, y0 + ly + 12 + 20 * row), name, size=14, anchor="lm")
    draw_axes(canvas, box, xticks=xticks, yticks=yticks, xlabel="epoch", ylabel=ylabel, title=title)


def _legend_corner(lines: list[NDArray[np.float64]], w: int, h: int) -> tuple[int, int]:
    """The legend's top-left in a w × h box: the first corner (upper right, upper left, lower
    left, lower right, as matplotlib's "best" tries them) where the fewest line points fall.

    ``lines`` are (E, 2) points at 2×; the points between them are counted too, so that a line
    crossing a corner counts there.
    """
    t = np.linspace(0, 1, 8)[:, None, None]
    # NaN (missing) points give NaN samples, which fall in no corner
    samples = np.concatenate([(p[:-1] + t * np.diff(p, axis=0)).reshape(-1, 2) for p in lines])
    samples = np.concatenate([samples, *lines]) / 2  # (S, 2), 1× px

    def covered(corner: tuple[int, int]) -> int:
        inside = (samples >= corner) & (samples <= (corner[0] + LEGEND_W, corner[1] + LEGEND_H))
        return int(inside.all(axis=1).sum())

    right, bottom = w - 7 - LEGEND_W, h - 7 - LEGEND_H
    return min([(right, 7), (7, 7), (7, bottom), (right, bottom)], key=covered)
