"""A weight matrix's columns drawn as image templates (θ, or W1's first hidden units), as a PNG.

``tile_images`` lays the columns out as a grid of images (pure NumPy); ``plot_templates`` draws
the grid with a diverging colour map centred at 0 and a colourbar, 800 pixels wide, in ~3 ms.
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
from PIL import Image, ImageDraw

from softmax_lab.pictures.axes import draw_axes, draw_colourbar, format_ticks, nice_ticks
from softmax_lab.pictures.raster import (
    BAD,
    DRAWING,
    GREYS,
    RDBU_R,
    blank,
    draw_text,
    map_colours,
    palette,
    save_png,
    text_size,
)

__all__ = ["plot_templates", "tile_images"]

PathLike: TypeAlias = str | os.PathLike[str]
# what the picture is saved with: NaN grey, the colour map, greys (text, frames)
TEMPLATES_COLOURS = palette(np.array([BAD], np.uint8), RDBU_R[::2], RDBU_R[255:], GREYS)


def tile_images(
    W: ArrayLike,
    *,
    shape: tuple[int, int] = (28, 28),
    ncols: int,
    pad: int = 1,
    fill: float = math.nan,
) -> NDArray[np.float64]:
    """Tile the columns of ``W`` as images in a grid, row by row.

    Parameters
    ----------
    W : array_like of shape (n, c)
        c images of n = h·w pixels, one per column, each flattened row-major (as MNIST is).
    shape : (h, w)
        The image shape.
    ncols : int
        Tiles per grid row (at most c are used); the grid has ⌈c / ncols⌉ rows.
    pad : int
        Pixels of ``fill`` between neighbouring tiles (none around the outside).
    fill : float
        Value of the padding and of unused tiles in the last row; NaN draws as imshow's "bad"
        colour.

    Returns
    -------
    ndarray of shape (r·h + (r−1)·pad, q·w + (q−1)·pad), float64
        With q = min(ncols, c) tile columns and r = ⌈c / q⌉ rows; column j of ``W`` is the tile at
        grid row j // q, grid column j % q.
    """
    W = np.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"W must be 2-D of shape (n, c), one image per column; got {W.shape}")
    n, c = W.shape
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (h, w) with h, w >= 1, got {shape}")
    h, w = shape
    if n != h * w:
        raise ValueError(
            f"W has n={n} rows but shape={tuple(shape)} needs h*w={h * w}; "
            f"pass shape=(h, w) with h*w == {n}"
        )
    if c < 1:
        raise ValueError("W has no columns (c=0): nothing to tile")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    q = min(ncols, c)
    r = -(-c // q)
    padded = np.full((n, r * q), fill)  # (n, r·q): unused tiles hold fill
    padded[:, :c] = W
    grid = np.full((r, h + pad, q, w + pad), fill)
    # (n, r·q) → (r·q, h, w) → (r, q, h, w) → (r, h, q, w): image rows interleave with grid columns
    grid[:, :h, :, :w] = padded.T.reshape(r, q, h, w).transpose(0, 2, 1, 3)
    out = grid.reshape(r * (h + pad), q * (w + pad))
    return np.ascontiguousarray(out[: out.shape[0] - pad, : out.shape[1] - pad])


def _square_shape(n: int) -> tuple[int, int] | None:
    root = math.isqrt(n)
    return (root, root) if root * root == n else None


def plot_templates(
    W: ArrayLike,
    path: PathLike,
    *,
    shape: tuple[int, int] | None = None,
    titles: Sequence[str] | None = None,
    ncols: int = 5,
    title: str | None = None,
) -> Path:
    """The columns of a weight matrix drawn as images ("templates"), e.g. θ or W1[:, :16].

    One diverging colour map centred at 0 (``RdBu_r``, limits ±max|W|, red positive) and one
    colourbar for all tiles; the tiles are ``tile_images(W)`` drawn as one image (grey lines
    between tiles), each labelled in its top-left corner.

    Parameters
    ----------
    W : array_like of shape (n, c), float
        One template per column, flattened row-major.
    path : str or path-like
        Where the PNG goes: 800 pixels wide, as tall as the tile grid needs (at most 744).
    shape : (h, w), optional
        The image shape, h·w = n. ``None`` takes √n × √n when n is a perfect square (28 × 28 for
        MNIST) and otherwise, like ``(1, n)``, draws the c columns as a (c, n) heatmap, one row
        per template.
    titles : sequence of c str, optional
        Tile labels; default the column index ``"0"``, ``"1"``, …
    ncols : int
        Tiles per grid row.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    t0 = time.perf_counter()
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"W must be 2-D of shape (n, c), one template per column; got {W.shape}")
    n, c = W.shape
    if c < 1:
        raise ValueError("W has no columns (c=0): no template to draw")
    labels = [str(j) for j in range(c)] if titles is None else list(titles)
    if len(labels) != c:
        raise ValueError(f"got {len(labels)} titles for the {c} columns of W; pass one per column")
    tile_shape = shape if shape is not None else _square_shape(n)
    if tile_shape is not None:
        tile_images(W[:, :1], shape=tile_shape, ncols=1)  # validates shape against n
        if tile_shape[0] == 1:  # one-pixel-high tiles: the strip heatmap shows them better
            tile_shape = None
    # (c, n), one row per template; or (H, W) tiles with NaN between them
    image = W.T if tile_shape is None else tile_images(W, shape=tile_shape, ncols=ncols)
    finite = np.abs(W[np.isfinite(W)])
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    with DRAWING:
        canvas = _draw_templates(image, tile_shape, min(ncols, c), labels, vmax, title)
        return save_png(canvas, path, TEMPLATES_COLOURS, started=t0)


def _draw_templates(
    image: NDArray[np.float64],
    tile_shape: tuple[int, int] | None,
    q: int,
    labels: list[str],
    vmax: float,
    title: str | None,
) -> Image.Image:
    """The tile grid (or the strip heatmap) and its colourbar, 800 pixels wide."""
    # pixel layout: 10 px margins, 90 px on the right for the colourbar, 34 px for a title
    left, right, bottom, top = (10, 90, 10, 34) if tile_shape else (60, 90, 45, 34)
    top = top if title else 10
    gh, gw = image.shape
    iw = 800 - left - right
    if tile_shape is None:
        ih = min(max(18 * gh, 120), 600)
    else:
        ih = max(round(iw * gh / gw), 60)
        if ih > 700:  # a tall grid: cap the height and narrow the image to keep pixels square
            ih, iw = 700, round(700 * gw / gh)
    canvas = blank(800, top + ih + bottom)
    pixels = Image.fromarray(map_colours(image, RDBU_R, -vmax, vmax))  # (gh, gw) pixels
    canvas.paste(pixels.resize((iw, ih), Image.Resampling.NEAREST), (left, top))
    if tile_shape is None:  # one row per template, named by the y ticks
        every = math.ceil(14 * gh / ih)  # rows per tick label, so that labels do not overlap
        rows = np.arange(0, gh, every)
        xt = nice_ticks(-0.5, gw - 0.5, n=8, integer=True)  # the image spans -½ .. gw - ½
        draw_axes(
            canvas,
            (left, top, left + iw, top + ih),
            xticks=(left + (xt + 0.5) * iw / gw, format_ticks(xt)),
            yticks=(top + (rows + 0.5) * ih / gh, labels[::every]),
            xlabel="feature index",
            size=13,
        )
    else:
        h, w = tile_shape
        veil = ImageDraw.Draw(canvas, "RGBA")
        for j, label in enumerate(labels):  # in the tile's top-left corner, on a white veil
            x = left + round(j % q * (w + 1) * iw / gw) + 1
            y = top + round(j // q * (h + 1) * ih / gh) + 1
            tw, th = text_size(label, 11)
            veil.rectangle((x, y, x + tw + 3, y + th + 3), fill=(255, 255, 255, 178))
            draw_text(canvas, (x + 2, y + 2), label, size=11)
    draw_colourbar(canvas, (left + iw + 12, top, left + iw + 26, top + ih), RDBU_R, -vmax, vmax)
    if title:
        draw_text(canvas, (400, 6), title, size=17, anchor="ma")
    return canvas
