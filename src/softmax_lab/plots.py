"""Pictures of runs and sweeps, written as PNG files for the tracking UI.

Per run: learning curves (``plot_curves``), weights as image templates (``plot_templates``) and a
confusion matrix (``plot_confusion``). Per sweep: a metric over the swept parameters
(``plot_sweep_heatmap``) and every run's curve overlaid (``plot_overlaid_curves``).

Drawing uses matplotlib's object API on an Agg canvas: no pyplot and no backend switch, so a
notebook's backend is untouched. Each picture is drawn under matplotlib's default style (a
notebook's rcParams do not leak in) at a fixed pixel size that depends only on the input's shape,
so the same input gives the same bytes.

Cost, measured by ``benchmarks/plots.py``: per-run figures are laid out by hand in pixels (no
layout engine), built once per layout and refilled by later calls (``_reuse``), and a confusion
matrix's k² counts are pasted as one bitmap (``_stamp_labels``) instead of k² text artists;
together these halve the warm cost of a run's three pictures. Matplotlib takes ~0.5 s to import,
so it is imported inside the drawing functions: ``import softmax_lab.plots`` and the pure-NumPy
helpers (``tile_images``, ``confusion_matrix``, ``choose_axes``) never load it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure
    from matplotlib.image import FigureImage

__all__ = [
    "HISTORY_KEYS",
    "choose_axes",
    "confusion_matrix",
    "plot_confusion",
    "plot_curves",
    "plot_overlaid_curves",
    "plot_sweep_heatmap",
    "plot_templates",
    "tile_images",
]

logger = logging.getLogger(__name__)

PathLike: TypeAlias = str | os.PathLike[str]
DPI = 100
HISTORY_KEYS = ("epoch", "train_loss", "train_error", "test_loss", "test_error")
MISSING_LABEL = "—"  # tick label of a parameter value that is missing (NaN/None) in a sweep


# ---------------------------------------------------------------------------------------------
# figure plumbing

# A fixed title height: else every draw measures all tick labels to place the titles (~15 ms/axes)
_RC = {"axes.titley": 1.0}


@contextmanager
def _default_style() -> Iterator[None]:
    """Draw under matplotlib's default rcParams, whatever style the caller's session set."""
    import matplotlib.style

    with matplotlib.style.context(["default", _RC]):
        yield


def _new_figure(width: int, height: int, *, layout: Literal["constrained"] | None = None) -> Figure:
    """An empty figure of exactly ``width`` × ``height`` pixels on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # +0.25 px: Agg truncates the size to whole pixels, and e.g. 0.29 * 100 == 28.999999999999996
    fig = Figure(figsize=((width + 0.25) / DPI, (height + 0.25) / DPI), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _add_axes_px(fig: Figure, left: int, bottom: int, width: int, height: int) -> Axes:
    """Axes at a rectangle given in pixels from the figure's lower-left corner."""
    W, H = fig.bbox.width, fig.bbox.height
    return fig.add_axes((left / W, bottom / H, width / W, height / H))


def _pin_axis_labels(ax: Axes, *, below: float = 30.0, left: float = 50.0) -> None:
    """Place the axis labels ``below`` and ``left`` pixels off the axes' edges.

    Matplotlib otherwise measures every tick label on each draw to keep its axis labels clear of
    them (~8 ms per axis); the margins here fit tick labels of up to 6 characters.
    """
    ax.xaxis.set_label_coords(0.5, -below / ax.bbox.height)
    ax.yaxis.set_label_coords(-left / ax.bbox.width, 0.5)


def _save(fig: Figure, path: PathLike, t0: float) -> Path:
    out = Path(path)
    # zlib level 1: half the encoding time of the default 6, for files ~20 % larger
    fig.savefig(out, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    logger.debug("wrote %s in %.0f ms", out, (time.perf_counter() - t0) * 1e3)
    return out


@dataclass
class _Picture:
    """A built figure and the artists that each call refills with its data."""

    fig: Figure
    artists: dict[str, Any] = field(default_factory=dict)


# Per-run pictures keep their figure for the next call with the same layout: building the axes,
# ticks and colourbar costs about as much as drawing them, and a sweep's jobs (one process)
# draw the same three layouts over and over. The cache keeps the most recently used few. The
# lock serialises all drawing here: cached figures and rcParams (the style) are shared state.
_PICTURES: OrderedDict[tuple[Hashable, ...], _Picture] = OrderedDict()
_PICTURES_LOCK = threading.Lock()
_PICTURES_KEPT = 8


def _reuse(key: tuple[Hashable, ...], build: Callable[[], _Picture]) -> _Picture:
    """The picture an earlier call built for ``key``, else ``build()``; hold the lock."""
    picture = _PICTURES.pop(key, None) or build()
    _PICTURES[key] = picture  # most recently used last
    while len(_PICTURES) > _PICTURES_KEPT:
        _PICTURES.popitem(last=False)
    return picture


def _stamp_labels(
    fig: Figure,
    rect: tuple[int, int, int, int],
    strings: Sequence[str],
    centres: Sequence[tuple[float, float]],
    colours: Sequence[str],
    *,
    fontsize: float,
) -> FigureImage:
    """Draw many short labels as one overlay image instead of one ``Text`` artist each.

    A ``Text`` costs ~0.5 ms to draw; a confusion matrix has k² of them. Here each distinct
    string is rasterised once with the font Agg uses for text (same glyphs, same hinting), and
    the bitmaps are pasted into one RGBA image placed on the figure pixel for pixel.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    rect : (left, bottom, width, height)
        The overlay's place on the figure, in pixels from the lower-left corner.
    strings : sequence of str
        The labels (single line).
    centres : sequence of (x, y)
        Each label's centre in pixels from the overlay's top-left corner.
    colours : sequence of matplotlib colours
        Each label's colour.
    fontsize : float
        In points.

    Returns
    -------
    matplotlib.image.FigureImage
        The overlay; ``.remove()`` takes it off the figure.
    """
    from matplotlib.colors import to_rgb
    from matplotlib.font_manager import FontProperties, findfont, get_font

    left, bottom, width, height = rect
    font = get_font(findfont(FontProperties(size=fontsize)))
    font.clear()
    font.set_size(fontsize, DPI)
    # uint8 RGBA, transparent: Agg composites it as is, with no colour-mapping pass
    overlay = np.zeros((height, width, 4), dtype=np.uint8)  # (H, W, 4)
    glyphs: dict[str, NDArray[np.uint8]] = {}
    for text, (cx, cy), colour in zip(strings, centres, colours, strict=True):
        if text not in glyphs:
            font.set_text(text, 0.0)
            font.draw_glyphs_to_bitmap(antialiased=True)
            alpha = np.asarray(font.get_image(), dtype=np.uint8)  # (h, w) glyph coverage
            rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
            # crop to the ink so the label centres on its glyphs, not on the line box
            if rows.size:
                alpha = alpha[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            glyphs[text] = alpha if rows.size else alpha[:0, :0]
        glyph = glyphs[text]
        gh, gw = glyph.shape
        y0, x0 = round(cy - gh / 2), round(cx - gw / 2)
        # clip to the overlay: a label wider than its cell must not wrap or raise
        ys, xs = slice(max(y0, 0), min(y0 + gh, height)), slice(max(x0, 0), min(x0 + gw, width))
        if ys.start >= ys.stop or xs.start >= xs.stop:
            continue
        overlay[ys, xs, :3] = [round(255 * v) for v in to_rgb(colour)]
        overlay[ys, xs, 3] = glyph[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return fig.figimage(overlay, xo=left, yo=bottom, origin="upper", zorder=3)


def _text_colour(cmap: Colormap, fraction: float) -> str:
    """Black or white, whichever reads better on ``cmap(fraction)``."""
    r, g, b, _ = cmap(fraction)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


# ---------------------------------------------------------------------------------------------
# per run


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
    with _PICTURES_LOCK, _default_style():
        pic = _reuse(("curves", bool(title)), lambda: _build_curves(titled=bool(title)))
        for key in HISTORY_KEYS[1:]:
            pic.artists[key].set_data(col["epoch"], col[key])
        for ax in pic.fig.axes:
            ax.relim()
            ax.autoscale_view()
        if title:
            pic.artists["title"].set_text(title)
        return _save(pic.fig, path, t0)


def _build_curves(*, titled: bool) -> _Picture:
    from matplotlib.ticker import MaxNLocator

    pic = _Picture(_new_figure(1000, 400))
    pic.fig.subplots_adjust(left=0.07, right=0.985, bottom=0.13, top=0.85 if titled else 0.91)
    for j, (what, label) in enumerate((("loss", "mean softmax loss"), ("error", "0/1 error"))):
        ax = pic.fig.add_subplot(1, 2, j + 1)
        (pic.artists[f"train_{what}"],) = ax.plot([], [], "o-", ms=4, label="train")
        (pic.artists[f"test_{what}"],) = ax.plot([], [], "s--", ms=4, label="test")
        ax.set(xlabel="epoch", ylabel=label, title=what)
        _pin_axis_labels(ax)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    if titled:
        pic.artists["title"] = pic.fig.suptitle("")
    return pic


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
    colourbar for all tiles; the tiles are one ``imshow`` of ``tile_images(W)`` (grey lines
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
    key = ("templates", image.shape, tile_shape, min(ncols, c), bool(title))
    with _PICTURES_LOCK, _default_style():
        pic = _reuse(key, lambda: _build_templates(image.shape, tile_shape, ncols, c, bool(title)))
        pic.artists["image"].set_data(image)
        pic.artists["image"].set_clim(-vmax, vmax)
        if tile_shape is None:
            pic.artists["image"].axes.set_yticks(range(c), labels)
        else:
            for text, label in zip(pic.artists["labels"], labels, strict=True):
                text.set_text(label)
        if title:
            pic.artists["title"].set_text(title)
        return _save(pic.fig, path, t0)


def _build_templates(
    image_shape: tuple[int, ...],
    tile_shape: tuple[int, int] | None,
    ncols: int,
    c: int,
    titled: bool,
) -> _Picture:
    from matplotlib import colormaps

    # pixel layout: 10 px margins, 90 px on the right for the colourbar, 34 px for a title
    left, right, bottom, top = (10, 90, 10, 34) if tile_shape else (60, 90, 45, 34)
    top = top if titled else 10
    iw = 800 - left - right
    if tile_shape is None:
        ih = min(max(18 * c, 120), 600)
    else:
        ih = max(round(iw * image_shape[0] / image_shape[1]), 60)
        if ih > 700:  # a tall grid: cap the height and narrow the image to keep pixels square
            ih, iw = 700, round(700 * image_shape[1] / image_shape[0])
    pic = _Picture(_new_figure(800, bottom + ih + top))
    ax = _add_axes_px(pic.fig, left, bottom, iw, ih)
    cmap = colormaps["RdBu_r"].with_extremes(bad="0.6")  # grey between tiles
    pic.artists["image"] = im = ax.imshow(
        np.zeros(image_shape), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest", aspect="auto"
    )
    if tile_shape is None:
        ax.set_xlabel("feature index")
    else:
        ax.set_axis_off()
        h, w = tile_shape
        q = min(ncols, c)
        box = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7}
        # pixel (i, k) spans [k − ½, k + ½]: each label sits just inside its tile's corner
        pic.artists["labels"] = [
            ax.text(
                j % q * (w + 1) + 0.1,
                j // q * (h + 1) + 0.1,
                "",
                ha="left",
                va="top",
                fontsize=8,
                bbox=box,
            )
            for j in range(c)
        ]
    pic.fig.colorbar(im, cax=_add_axes_px(pic.fig, left + iw + 12, bottom, 14, ih))
    if titled:
        pic.artists["title"] = pic.fig.suptitle("", y=1 - 6 / pic.fig.bbox.height, va="top")
    return pic


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
    with _PICTURES_LOCK, _default_style():
        pic = _reuse(("confusion", names, normalize), lambda: _build_confusion(names, normalize))
        pic.artists["image"].set_data(colour)
        pic.artists["image"].set_clim(0, vmax)
        pic.artists["title"].set_text(title)
        if "counts" in pic.artists:
            pic.artists.pop("counts").remove()
        if k <= 20:
            cmap = pic.artists["image"].get_cmap()
            cells = [(i, j) for i in range(k) for j in range(k)]
            pic.artists["counts"] = _stamp_labels(
                pic.fig,
                (60, 55, 430, 425),
                [str(cm[i, j]) for i, j in cells],
                [((j + 0.5) * 430 / k, (i + 0.5) * 425 / k) for i, j in cells],
                [_text_colour(cmap, colour[i, j] / vmax) for i, j in cells],
                fontsize=9 if k <= 10 else 7,
            )
        return _save(pic.fig, path, t0)


def _build_confusion(names: tuple[str, ...], normalize: bool) -> _Picture:
    k = len(names)
    pic = _Picture(_new_figure(600, 520))
    ax = _add_axes_px(pic.fig, 60, 55, 430, 425)
    pic.artists["image"] = im = ax.imshow(
        np.zeros((k, k)), cmap="Blues", vmin=0, vmax=1, interpolation="nearest", aspect="auto"
    )
    if k <= 30:
        ax.set_xticks(range(k), names)
        ax.set_yticks(range(k), names)
    ax.set(xlabel="predicted class", ylabel="true class")
    _pin_axis_labels(ax, left=36.0)
    pic.artists["title"] = ax.set_title("")
    label = "fraction of true class" if normalize else "count"
    pic.fig.colorbar(im, cax=_add_axes_px(pic.fig, 505, 55, 14, 425), label=label)
    return pic


# ---------------------------------------------------------------------------------------------
# per sweep


def choose_axes(
    df: pd.DataFrame, metric: str = "test/error", *, params: Sequence[str] | None = None
) -> tuple[str | None, str | None, str | None]:
    """Pick the swept parameters a sweep picture shows: (x, y, facet).

    A parameter is swept when it takes more than one distinct value (NaN counts as a value).
    The swept ones are ranked by their number of distinct values, ties in column order; x gets
    the most, then y, then facet.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per run.
    metric : str
        The metric column; never a parameter.
    params : sequence of str, optional
        The parameter columns; default every column but ``metric``. Pass it when ``df`` carries
        other columns (run ids, other metrics).

    Returns
    -------
    (x, y, facet) : three column names or None
        ``(None, None, None)`` when nothing is swept, ``(p, None, None)`` for one swept
        parameter, ``(p, q, None)`` for two.

    Raises
    ------
    ValueError
        When ``metric`` or a param is not a column, or more than three parameters are swept.
    """
    columns = list(df.columns)
    if metric not in columns:
        raise ValueError(f"metric {metric!r} is not a column of df; columns: {columns}")
    candidates = [c for c in columns if c != metric] if params is None else list(params)
    unknown = [p for p in candidates if p not in columns or p == metric]
    if unknown:
        raise ValueError(f"params {unknown} are not parameter columns of df; columns: {columns}")
    distinct = {p: int(df[p].nunique(dropna=False)) for p in candidates}
    swept = sorted((p for p in candidates if distinct[p] > 1), key=lambda p: -distinct[p])
    if len(swept) > 3:
        raise ValueError(
            f"{len(swept)} parameters are swept ({', '.join(swept)}) but a sweep picture shows at "
            "most 3 (x, y, facet); pass params=[...] or filter df"
        )
    x, y, facet = [*swept, None, None, None][:3]
    return x, y, facet


def _levels(df: pd.DataFrame, column: str | None) -> tuple[list[str], NDArray[np.intp]]:
    """Sorted tick labels of a parameter column and each row's index into them.

    Numbers (and numeric strings, as MLflow stores params) sort by value, other values by text,
    missing values last as ``MISSING_LABEL``. ``None`` gives one empty level.
    """
    if column is None:
        return [""], np.zeros(len(df), dtype=np.intp)
    import pandas as pd

    def label(v: Any) -> str:
        if pd.isna(v):
            return MISSING_LABEL
        if isinstance(v, bool | np.bool_ | str):
            return str(v)
        return f"{v:g}" if isinstance(v, int | float | np.number) else str(v)

    def key(v: Any) -> tuple[int, float, str]:
        if pd.isna(v):
            return (2, 0.0, "")
        try:
            number = float(v)
        except (TypeError, ValueError):
            return (1, 0.0, str(v))
        return (0, number, "") if not math.isnan(number) else (2, 0.0, "")

    values = df[column].tolist()
    labels = [label(v) for v in values]
    first = dict(zip(labels, values, strict=True))  # label -> a value carrying it
    ordered = sorted(first, key=lambda lab: key(first[lab]))
    index = {lab: i for i, lab in enumerate(ordered)}
    return ordered, np.array([index[lab] for lab in labels], dtype=np.intp)


def plot_sweep_heatmap(
    df: pd.DataFrame,
    path: PathLike,
    *,
    metric: str = "test/error",
    params: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """A sweep's metric over its swept parameters, each cell annotated with its value.

    The axes come from ``choose_axes``: a heatmap of x by y, one panel per value of a third swept
    parameter (shared colour scale, one colourbar); with one swept parameter a bar chart; with
    none a single cell. Runs sharing a cell are averaged (non-finite values skipped; a cell with
    runs but no finite value reads "nan"); combinations without runs stay blank.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per run: parameter columns (``optim.lr``, ``model.name``, …) and ``metric``.
    path : str or path-like
        Where the PNG goes; the size grows with the number of levels and panels.
    metric : str
        Numeric column to show.
    params : sequence of str, optional
        Parameter columns; default every column but ``metric`` (see ``choose_axes``).
    title : str, optional
        Figure title; default the metric and the number of runs.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    t0 = time.perf_counter()
    if len(df) == 0:
        raise ValueError("df has no rows: a sweep picture needs at least one run")
    x, y, facet = choose_axes(df, metric, params=params)
    try:
        value = df[metric].to_numpy(dtype=np.float64, na_value=np.nan)  # (m,)
    except (TypeError, ValueError) as e:
        raise ValueError(f"metric column {metric!r} must be numeric: {e}") from e
    (xl, xi), (yl, yi), (fl, fi) = _levels(df, x), _levels(df, y), _levels(df, facet)
    F, Y, X = len(fl), len(yl), len(xl)
    # aggregate per (facet, y, x) cell with bincount: runs, finite runs, sum of finite values
    cell = (fi * Y + yi) * X + xi
    ok = np.isfinite(value)
    runs = np.bincount(cell, minlength=F * Y * X).reshape(F, Y, X)
    n_ok = np.bincount(cell[ok], minlength=F * Y * X).reshape(F, Y, X)
    sums = np.bincount(cell[ok], weights=value[ok], minlength=F * Y * X).reshape(F, Y, X)
    mean = np.divide(sums, n_ok, out=np.full(sums.shape, np.nan), where=n_ok > 0)  # (F, Y, X)
    # one number of decimals for every cell: 3 significant digits of the largest value
    finite = np.abs(mean[np.isfinite(mean)])
    top = float(finite.max()) if finite.size else 0.0
    decimals = max(0, 2 - math.floor(math.log10(top))) if top > 0 else 3
    text = np.where(
        n_ok > 0, np.vectorize(lambda v: f"{v:.{decimals}f}", otypes=[str])(mean), "nan"
    )
    text[runs == 0] = ""
    title = title or f"{metric} over {len(df)} run{'s' if len(df) > 1 else ''}"
    with _PICTURES_LOCK, _default_style():
        if x is not None and y is None:
            return _draw_bars(xl, mean[0, 0], text[0, 0], x, metric, title, path, t0)
        return _draw_heatmaps(mean, text, (xl, yl, fl), (x, y, facet), metric, title, path, t0)


def _draw_bars(
    levels: list[str],
    mean: NDArray[np.float64],
    text: NDArray[np.str_],
    x: str,
    metric: str,
    title: str,
    path: PathLike,
    t0: float,
) -> Path:
    """One swept parameter: a bar per level, height the metric, value written on top."""
    n = len(levels)
    fig = _new_figure(min(max(60 * n + 160, 500), 1400), 420, layout="constrained")
    ax = fig.add_subplot()
    heights = np.nan_to_num(mean, nan=0.0)
    ax.bar(range(n), heights, color="C0")
    for j in range(n):
        ax.annotate(
            str(text[j]),
            (j, heights[j]),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    rotate = max(map(len, levels)) > 6 and n > 4
    ax.set_xticks(
        range(n), levels, rotation=30 if rotate else 0, ha="right" if rotate else "center"
    )
    ax.set(xlabel=x, ylabel=metric, title=title)
    ax.margins(y=0.12)
    return _save(fig, path, t0)


def _draw_heatmaps(
    mean: NDArray[np.float64],
    text: NDArray[np.str_],
    levels: tuple[list[str], list[str], list[str]],
    names: tuple[str | None, str | None, str | None],
    metric: str,
    title: str,
    path: PathLike,
    t0: float,
) -> Path:
    """x by y heatmaps, one panel per facet level, one shared colour scale."""
    from matplotlib import colormaps

    (xl, yl, fl), (x, y, facet) = levels, names
    F, Y, X = mean.shape
    per_row = min(F, 4)
    n_rows = -(-F // per_row)
    panel_w, panel_h = min(max(70 * X, 220), 700) + 110, min(max(50 * Y, 200), 600) + 90
    fig = _new_figure(per_row * panel_w + 110, n_rows * panel_h + 40, layout="constrained")
    finite = mean[np.isfinite(mean)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:  # one value (or none): any non-empty range draws it mid-scale
        lo, hi = lo - 0.5, hi + 0.5
    cmap = colormaps["viridis"].with_extremes(bad="white")
    size = 8 if X <= 10 else 6
    axes, im = [], None
    for f in range(F):
        ax = fig.add_subplot(n_rows, per_row, f + 1)
        axes.append(ax)
        im = ax.imshow(
            mean[f],
            cmap=cmap,
            vmin=lo,
            vmax=hi,
            origin="lower",
            aspect="auto",
            interpolation="none",
        )
        if X <= 30:
            for (i, j), s in np.ndenumerate(text[f]):
                if s:
                    fraction = (mean[f, i, j] - lo) / (hi - lo)
                    colour = "black" if s == "nan" else _text_colour(cmap, fraction)  # nan: white
                    ax.text(j, i, s, ha="center", va="center", fontsize=size, color=colour)
        rotate = X > 4 and max(map(len, xl)) > 5
        ax.set_xticks(
            range(X), xl, rotation=30 if rotate else 0, ha="right" if rotate else "center"
        )
        ax.set_yticks(range(Y), yl)
        if x is None:  # nothing swept: one cell, no ticks
            ax.set(xticks=[], yticks=[])
        ax.set(xlabel=x or "", ylabel=y or "", title=f"{facet} = {fl[f]}" if facet else "")
    assert im is not None  # F >= 1: _levels always returns at least one level
    fig.colorbar(im, ax=axes, label=metric)
    fig.suptitle(title)
    return _save(fig, path, t0)


def plot_overlaid_curves(
    curves: Mapping[str, Sequence[tuple[int, float]]],
    path: PathLike,
    *,
    ylabel: str = "test error",
    max_legend: int = 20,
    title: str | None = None,
) -> Path:
    """Every run's curve on one axes, e.g. the test error of each run of a sweep.

    Runs are ranked by their last finite value (lowest first, non-finite last). Up to 10 runs
    get the usual distinct colours; more are coloured by rank (viridis, dark = lowest). The
    legend lists the ``max_legend`` lowest-ranked runs and says how many there are in all.

    Parameters
    ----------
    curves : mapping of run name to a sequence of (epoch, value) pairs
        An empty sequence (a run that diverged in epoch 1) draws nothing but keeps its name.
    path : str or path-like
        Where the PNG goes (900 × 500 pixels).
    ylabel : str
        The y-axis label.
    max_legend : int
        Most legend entries; names longer than 40 characters are shortened.
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
    n = len(ranked)
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    with _PICTURES_LOCK, _default_style():
        fig = _new_figure(900, 500)
        ax = _add_axes_px(fig, 75, 55, 560, 500 - 55 - (40 if title else 20))
        for rank, name in enumerate(ranked):
            colour = f"C{rank}" if n <= 10 else colormaps["viridis"](0.9 * rank / (n - 1))
            short = name if len(name) <= 40 else name[:39] + "…"
            label = short if rank < max_legend else "_nolegend_"
            arr = points[name]
            ax.plot(arr[:, 0], arr[:, 1], "o-", ms=3, lw=1.2, color=colour, label=label)
        ax.set(xlabel="epoch", ylabel=ylabel, title=title or "")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if max_legend > 0:
            shown = min(n, max_legend)
            heading = f"{n} runs" if shown == n else f"{shown} lowest of {n} runs"
            ax.legend(
                loc="upper left",
                bbox_to_anchor=(1.02, 1.0),
                fontsize=8,
                title=heading,
                title_fontsize=8,
                frameon=False,
            )
        return _save(fig, path, t0)
