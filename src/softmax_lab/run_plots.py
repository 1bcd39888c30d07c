"""A run's pictures as PNG files for the tracking UI, drawn with Pillow and NumPy.

Learning curves (``plot_curves``), weights as image templates (``plot_templates``) and the test
confusion matrix (``plot_confusion``), plus their pure-NumPy helpers ``tile_images`` and
``confusion_matrix``. Each picture has a fixed pixel size that depends only on the input's shape,
and the same input gives the same bytes. The per-sweep pictures are in ``softmax_lab.plots``.

Cost, measured by ``benchmarks/plots.py``: ~11 ms warm for the three (curves 6, templates 3,
confusion 3), where matplotlib took ~150 ms, its text layout alone more than a demo run's
training. No matplotlib here (it is never imported): images are lookups into 256-colour tables
scaled by nearest-neighbour resampling, text is pasted from a cache of rasterised strings, only
the curves' lines are antialiased (their panel drawn at 2× and halved), and the PNGs are
palette images, a third of the bytes for zlib, still the largest share (``softmax_lab.raster``).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PIL import Image, ImageDraw

from softmax_lab.raster import (
    BAD,
    BLACK,
    BLUES,
    DRAWING,
    GREYS,
    RDBU_R,
    WHITE,
    Box,
    Colour,
    Palette,
    blank,
    draw_axes,
    draw_colourbar,
    draw_markers,
    draw_polyline,
    draw_text,
    format_ticks,
    ink_on,
    map_colours,
    nice_ticks,
    palette,
    save_png,
    text_size,
    tints,
)

__all__ = [
    "HISTORY_KEYS",
    "confusion_matrix",
    "plot_confusion",
    "plot_curves",
    "plot_templates",
    "tile_images",
]

logger = logging.getLogger(__name__)

PathLike: TypeAlias = str | os.PathLike[str]
HISTORY_KEYS = ("epoch", "train_loss", "train_error", "test_loss", "test_error")


class _Style(NamedTuple):
    colour: Colour
    dash: tuple[float, float] | None  # (on, off) px at 2×; None: solid
    square: bool  # square markers, else round


TRAIN = _Style((31, 119, 180), None, False)  # matplotlib's C0 "o-"
TEST = _Style((255, 127, 14), (15.0, 7.0), True)  # C1 "s--"
GRID = (232, 232, 232)
LEGEND_W, LEGEND_H = 84, 44  # px
# what each picture is saved with: its colours, then greys (text, frames) and their blends
CURVES_COLOURS = palette(GREYS, tints(TRAIN.colour, 96), tints(TEST.colour, 96))
TEMPLATES_COLOURS = palette(np.array([BAD], np.uint8), RDBU_R[::2], RDBU_R[255:], GREYS)
CONFUSION_COLOURS = palette(GREYS, BLUES[::2], BLUES[255:])


def _saved(canvas: Image.Image, path: PathLike, colours: Palette, t0: float) -> Path:
    out = save_png(canvas, path, colours)
    logger.debug("wrote %s in %.1f ms", out, (time.perf_counter() - t0) * 1e3)
    return out


# ---------------------------------------------------------------------------------------------
# learning curves


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
        return _saved(canvas, path, CURVES_COLOURS, t0)


def _limits(values: NDArray[np.float64]) -> tuple[float, float]:
    """The range of the finite ``values`` with 5 % margins; ±5 % around a single value."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo <= 1e-9 * abs(lo):
        half = 0.05 * abs(lo) or 0.5
        return lo - half, hi + half
    return lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)


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
    xlo, xhi = _limits(x)
    if xhi - xlo < 1:  # one epoch: a unit range around it, one tick
        xlo, xhi = (xlo + xhi - 1) / 2, (xlo + xhi + 1) / 2
    ylo, yhi = _limits(np.concatenate(series))
    xt, yt = nice_ticks(xlo, xhi, n=8, integer=True), nice_ticks(ylo, yhi, n=8)
    xpx, ypx = (xt - xlo) / (xhi - xlo) * w, (yhi - yt) / (yhi - ylo) * h  # (T,) in the box
    # drawn at 2× and halved: the 2×2 average antialiases the lines and markers
    panel = blank(2 * w, 2 * h)
    draw = ImageDraw.Draw(panel)
    for px in np.round(2 * xpx).astype(int).tolist():
        draw.rectangle((px, 0, px + 1, 2 * h), fill=GRID)
    for py in np.round(2 * ypx).astype(int).tolist():
        draw.rectangle((0, py, 2 * w, py + 1), fill=GRID)
    scale = (2 * w / (xhi - xlo), 2 * h / (yhi - ylo))
    lines = []  # (E, 2) each, 2× px, NaN where a value is not finite
    for values, style in zip(series, (TRAIN, TEST), strict=True):
        points = np.stack([x - xlo, yhi - values], axis=1) * scale
        ok = np.isfinite(points).all(axis=1)
        points[~ok] = np.nan
        lines.append(points)
        kept = np.flatnonzero(ok)
        # consecutive finite points make one line; a non-finite value leaves a gap
        for run in np.split(kept, np.flatnonzero(np.diff(kept) > 1) + 1):
            draw_polyline(draw, points[run], style.colour, width=4, dash=style.dash)
        draw_markers(draw, points[ok], style.colour, size=11, square=style.square)
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
    canvas.paste(panel.reduce(2), (x0, y0))
    for row, name in enumerate(("train", "test")):
        draw_text(canvas, (x0 + lx + 41, y0 + ly + 12 + 20 * row), name, size=14, anchor="lm")
    xticks, yticks = (x0 + xpx, format_ticks(xt)), (y0 + ypx, format_ticks(yt))
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


# ---------------------------------------------------------------------------------------------
# templates


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
        return _saved(canvas, path, TEMPLATES_COLOURS, t0)


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


# ---------------------------------------------------------------------------------------------
# confusion matrix


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, k: int) -> NDArray[np.int64]:
    """Count each (true class, predicted class) pair.

    Parameters
    ----------
    y_true, y_pred : array_like of shape (m,), integer in 0..k−1
    k : int
        Number of classes.

    Returns
    -------
    ndarray of shape (k, k), int64
        Entry (i, j) counts the examples of class i predicted as j; rows sum to class sizes.
    """
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if yt.ndim != 1 or yt.shape != yp.shape:
        raise ValueError(
            f"y_true and y_pred must be 1-D of equal length; got shapes {yt.shape} and {yp.shape}"
        )
    for name, y in (("y_true", yt), ("y_pred", yp)):
        if y.size == 0:
            continue
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
        if y.min() < 0 or y.max() >= k:
            raise ValueError(
                f"{name} has labels outside 0..{k - 1}: min {y.min()}, max {y.max()} (is k={k} "
                "the number of classes?)"
            )
    # one flat cell index per example, row-major; intp so k·y cannot overflow a uint8 label
    cell = yt.astype(np.intp) * k + yp.astype(np.intp)
    return np.bincount(cell, minlength=k * k).reshape(k, k).astype(np.int64)


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
        Counts, rows true class, columns predicted class (``confusion_matrix``'s output).
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
        return _saved(canvas, path, CONFUSION_COLOURS, t0)


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
