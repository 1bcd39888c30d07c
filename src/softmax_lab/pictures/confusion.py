"""The confusion matrix of a run's test predictions drawn as a PNG heatmap with the count in
each cell (``plot_confusion``, ~3 ms). The counting, ``confusion_matrix``, is a metric and lives
in ``softmax_lab.core.loss``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PIL import Image

from softmax_lab.pictures.axes import draw_axes, draw_colourbar
from softmax_lab.pictures.raster import (
    BLACK,
    BLUES,
    DRAWING,
    GREYS,
    WHITE,
    blank,
    draw_text,
    ink_on,
    map_colours,
    palette,
    save_png,
    text_size,
)

__all__ = ["plot_confusion"]

PathLike: TypeAlias = str | os.PathLike[str]
# what the picture is saved with: greys (text, frames) and the colour map
CONFUSION_COLOURS = palette(GREYS, BLUES[::2], BLUES[255:])


def plot_confusion(
    cm: ArrayLike,
    path: PathLike,
    *,
    normalize: bool = True,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """A confusion matrix as a heatmap with the count written in each cell (k ≤ 20).

    Parameters
    ----------
    cm : array_like of shape (k, k), non-negative integer
        Counts, rows true class, columns predicted class (``core.loss.confusion_matrix``'s
        output).
    path : str or path-like
        Where the PNG goes (600 × 520 pixels).
    normalize : bool
        Colour each cell by its fraction of the true class (row), so errors on small classes
        show; ``False`` colours by raw count. The cell text is the count either way.
    labels : sequence of k str, optional
        Class names for the ticks (drawn for k ≤ 30), a few characters each (the layout is
        fixed); default ``"0"``, ``"1"``, …
    title : str, optional
        Figure title; default the number of examples and the error rate.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    t0 = time.perf_counter()
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"cm must be a square (k, k) matrix with k >= 1, got shape {cm.shape}")
    if not np.issubdtype(cm.dtype, np.integer) or (cm < 0).any():
        raise ValueError(f"cm must hold non-negative integer counts, got dtype {cm.dtype}")
    k = cm.shape[0]
    names = tuple(str(j) for j in range(k)) if labels is None else tuple(labels)
    if len(names) != k:
        raise ValueError(f"got {len(names)} labels for a {k}×{k} matrix; pass one per class")
    total = int(cm.sum())
    if normalize:
        rows = cm.sum(axis=1, keepdims=True)  # (k, 1)
        colour = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)  # (k, k)
        vmax = 1.0
    else:
        colour, vmax = cm.astype(np.float64), max(float(cm.max()), 1.0)
    if title is None:
        error = 1 - np.trace(cm) / total if total else math.nan
        title = f"confusion matrix: {total} examples, error {error:.4f}"
    with DRAWING:
        canvas = _draw_confusion(cm, colour, vmax, names, normalize, title)
        return save_png(canvas, path, CONFUSION_COLOURS, started=t0)


def _draw_confusion(
    cm: NDArray[np.integer],
    colour: NDArray[np.float64],
    vmax: float,
    names: tuple[str, ...],
    normalize: bool,
    title: str,
) -> Image.Image:
    """The coloured cells with their counts, ticks, labels and colourbar, 600 × 520 pixels."""
    k = len(names)
    canvas = blank(600, 520)
    box = x0, y0, x1, y1 = 60, 40, 490, 465
    cells = map_colours(colour, BLUES, 0.0, vmax)  # (k, k, 3)
    canvas.paste(
        Image.fromarray(cells).resize((x1 - x0, y1 - y0), Image.Resampling.NEAREST), box[:2]
    )
    cw, ch = (x1 - x0) / k, (y1 - y0) / k  # cell size, px
    if k <= 20:
        size, black = (12 if k <= 10 else 10), ink_on(cells)  # (k, k) bool
        for (i, j), count in np.ndenumerate(cm):
            ink = BLACK if black[i, j] else WHITE
            at = (x0 + (j + 0.5) * cw, y0 + (i + 0.5) * ch)
            draw_text(canvas, at, str(count), size=size, fill=ink, anchor="mm")
    shown = names if k <= 30 else ()
    centres = np.arange(len(shown), dtype=np.float64) + 0.5  # ticks at the cells' centres
    # the largest font, 8 to 14 px, in which the widest class name fits its column
    widest = max((text_size(name, 14)[0] for name in shown), default=1)
    size = max(8, min(14, math.floor(14 * (cw - 3) / max(widest, 1))))
    draw_axes(
        canvas,
        box,
        xticks=(x0 + centres * cw, shown),
        yticks=(y0 + centres * ch, shown),
        xlabel="predicted class",
        ylabel="true class",
        tick_size=size,
    )
    draw_text(canvas, ((x0 + x1) / 2, y0 - 8), title, size=16, anchor="md")
    label = "fraction of true class" if normalize else "count"
    draw_colourbar(canvas, (505, y0, 519, y1), BLUES, 0.0, vmax, label=label)
    return canvas
