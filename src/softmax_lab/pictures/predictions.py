"""Classified images as a PNG grid: each 28×28 image enlarged, with its predicted label and
probability (and the true label, when known; a wrong prediction in red)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from softmax_lab.pictures.raster import (
    DRAWING,
    GREYS,
    SMALL,
    blank,
    draw_text,
    fit_text,
    palette,
    save_png,
)

__all__ = ["draw_predictions"]

RED = (200, 30, 30)
# greys for the digits and text, and the red of a wrong prediction
PREDICTION_COLOURS = palette(GREYS, np.array([RED], np.uint8))
SCALE = 3  # screen pixels per image pixel
COLUMNS = 8
MOST = 64  # images drawn at most: the first ones


def draw_predictions(
    path: Path,
    X: NDArray[np.float32],
    labels: NDArray[np.integer],
    probability: NDArray[np.floating],
    names: Sequence[str],
    *,
    true: NDArray[np.integer] | None = None,
) -> Path:
    """Draw the first ``MOST`` images of ``X`` with their predictions; write ``path`` (PNG).

    Parameters
    ----------
    path : Path
        The PNG to write (its directory is made).
    X : ndarray of shape (m, 784), float32 in [0, 1]
        The images as the model saw them (white ink on black, drawn black on white).
    labels : ndarray of shape (m,), integer
        Predicted classes.
    probability : ndarray of shape (m,), float
        The predicted class's probability.
    names : sequence of m str
        Shown under each image.
    true : ndarray of shape (m,), integer, optional
        True labels: shown, and a wrong prediction is drawn in red.

    Returns
    -------
    Path
        ``path``.
    """
    m = min(len(X), MOST)
    if m == 0:
        raise ValueError("no images to draw")
    side = 28 * SCALE
    cell_w, cell_h = side + 24, side + 3 * (SMALL + 4) + 10
    cols = min(COLUMNS, m)
    rows = math.ceil(m / cols)
    path.parent.mkdir(parents=True, exist_ok=True)
    with DRAWING:
        canvas = blank(cols * cell_w, rows * cell_h)
        for i in range(m):
            x0, y0 = (i % cols) * cell_w + 12, (i // cols) * cell_h + 6
            grey = np.rint(255 * (1 - X[i].reshape(28, 28))).astype(np.uint8)  # black ink
            image = Image.fromarray(grey).resize((side, side), Image.Resampling.NEAREST)
            canvas.paste(image.convert("RGB"), (x0, y0))
            wrong = true is not None and int(true[i]) != int(labels[i])
            text = f"{int(labels[i])}  p={float(probability[i]):.2f}"
            lines = [(text, RED if wrong else (0, 0, 0))]
            if true is not None:
                lines.append((f"true {int(true[i])}", (0, 0, 0)))
            name = names[i]  # "file.gz[17]" is shown as "#17": the index is what tells them apart
            name = "#" + name[name.rindex("[") + 1 : -1] if name.endswith("]") else name
            lines.append((fit_text(name, side, SMALL, smallest=8)[0], (96, 96, 96)))
            for j, (line, colour) in enumerate(lines):
                y = y0 + side + 4 + j * (SMALL + 4)
                draw_text(canvas, (x0 + side / 2, y), line, size=SMALL, fill=colour, anchor="ma")
        return save_png(canvas, path, PREDICTION_COLOURS)
