"""A run's learning curves as a PNG: loss and 0/1 error, train against test (and validation,
for a run with a validation split), per epoch.

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

__all__ = ["HISTORY_KEYS", "VAL_KEYS", "plot_curves"]

PathLike: TypeAlias = str | os.PathLike[str]
HISTORY_KEYS = ("epoch", "train_loss", "train_error", "test_loss", "test_error")
VAL_KEYS = ("val_loss", "val_error")  # a run with a validation split has them too


class _Style(NamedTuple):
    colour: Colour
    dash: tuple[float, float] | None  # (on, off) px at 2×; None: solid
    square: bool  # square markers, else round


TRAIN = _Style((31, 119, 180), None, False)  # matplotlib's C0 "o-"
TEST = _Style((255, 127, 14), (15.0, 7.0), True)  # C1 "s--"
VAL = _Style((44, 160, 44), (5.0, 6.0), False)  # C2 "o:"
LEGEND_W, LEGEND_ROW = 84, 20  # px; a legend is 4 + 20 px a row high
# what the picture is saved with: greys (text, frames, grid), the colours and their blends; a
# third colour takes tints from the other two (a palette holds 256 colours)
CURVES_COLOURS = palette(GREYS, tints(TRAIN.colour, 96), tints(TEST.colour, 96))
VAL_CURVES_COLOURS = palette(
    GREYS, tints(TRAIN.colour, 64), tints(TEST.colour, 64), tints(VAL.colour, 64)
)


def plot_curves(
    history: Sequence[Mapping[str, float]], path: PathLike, *, title: str | None = None
) -> Path:
    """Learning curves: loss (train vs test) and 0/1 error (train vs test) per epoch; with a
    validation split, its curves too (green, dotted).

    Parameters
    ----------
    history : sequence of mappings, one per epoch
        Each with keys ``epoch, train_loss, train_error, test_loss, test_error`` (float), and
        ``val_loss, val_error`` for a run with a validation split, e.g.
        ``[m.as_dict() for m in result.history]``. Non-finite or missing validation values
        leave gaps.
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
    val = any(key in row for row in history for key in VAL_KEYS)
    keys = (*HISTORY_KEYS, *VAL_KEYS) if val else HISTORY_KEYS
    col = {
        key: np.array([float(row.get(key, np.nan)) for row in history]) for key in keys
    }  # (E,) each
    parts = ("train", "val", "test") if val else ("train", "test")
    styles = {"train": TRAIN, "val": VAL, "test": TEST}
    top = 60 if title else 36
    with DRAWING:
        canvas = blank(1000, 400)
        for j, (what, ylabel) in enumerate((("loss", "mean softmax loss"), ("error", "0/1 error"))):
            box = (75 + 502 * j, top, 482 + 502 * j, 348)
            series = [(p, col[f"{p}_{what}"], styles[p]) for p in parts]
            _draw_curve_panel(canvas, box, col["epoch"], series, ylabel=ylabel, title=what)
        if title:
            draw_text(canvas, (500, 10), title, size=17, anchor="ma")
        return save_png(canvas, path, VAL_CURVES_COLOURS if val else CURVES_COLOURS, started=t0)


def _draw_curve_panel(
    canvas: Image.Image,
    box: Box,
    x: NDArray[np.float64],
    series: Sequence[tuple[str, NDArray[np.float64], _Style]],
    *,
    ylabel: str,
    title: str,
) -> None:
    """One axes: grid, a line with markers per (name, values, style) of ``series``, a legend,
    ticks and labels."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    legend_h = 4 + LEGEND_ROW * len(series)
    plot = EpochPanel.over(x, np.concatenate([v for _, v, _ in series]), w, h, xticks=8)
    draw = plot.draw
    lines = []  # (E, 2) each, 2× px, NaN where a value is not finite
    for _, values, style in series:
        points = plot.at(x, values)
        points[~np.isfinite(points).all(axis=1)] = np.nan
        lines.append(points)
        draw_series(
            draw, points, style.colour, width=4, dash=style.dash, marker=11, square=style.square
        )
    lx, ly = _legend_corner(lines, w, h, legend_h)
    draw.rounded_rectangle(
        (2 * lx, 2 * ly, 2 * (lx + LEGEND_W), 2 * (ly + legend_h)),
        radius=6,
        fill=WHITE,
        outline=(204, 204, 204),
        width=2,
    )
    for row, (_, _, style) in enumerate(series):
        y = 2 * (ly + 12 + LEGEND_ROW * row)
        sample = np.array([[2 * lx + 12, y], [2 * lx + 68, y]], dtype=np.float64)
        draw_polyline(draw, sample, style.colour, width=4, dash=style.dash)
        draw_markers(
            draw, sample.mean(axis=0, keepdims=True), style.colour, size=11, square=style.square
        )
    xticks, yticks = plot.paste(canvas, box)
    for row, (name, _, _) in enumerate(series):
        draw_text(
            canvas, (x0 + lx + 41, y0 + ly + 12 + LEGEND_ROW * row), name, size=14, anchor="lm"
        )
    draw_axes(canvas, box, xticks=xticks, yticks=yticks, xlabel="epoch", ylabel=ylabel, title=title)


def _legend_corner(
    lines: list[NDArray[np.float64]], w: int, h: int, legend_h: int
) -> tuple[int, int]:
    """The top-left of a legend ``legend_h`` px high in a w × h box: the first corner (upper
    right, upper left, lower left, lower right, as matplotlib's "best" tries them) where the
    fewest line points fall.

    ``lines`` are (E, 2) points at 2×; the points between them are counted too, so that a line
    crossing a corner counts there.
    """
    t = np.linspace(0, 1, 8)[:, None, None]
    # NaN (missing) points give NaN samples, which fall in no corner
    samples = np.concatenate([(p[:-1] + t * np.diff(p, axis=0)).reshape(-1, 2) for p in lines])
    samples = np.concatenate([samples, *lines]) / 2  # (S, 2), 1× px

    def covered(corner: tuple[int, int]) -> int:
        inside = (samples >= corner) & (samples <= (corner[0] + LEGEND_W, corner[1] + legend_h))
        return int(inside.all(axis=1).sum())

    right, bottom = w - 7 - LEGEND_W, h - 7 - legend_h
    return min([(right, 7), (7, 7), (7, bottom), (right, bottom)], key=covered)
