"""Drawing primitives on a Pillow RGB canvas: text, colour maps, ticks, axes, lines, PNG output.

The building blocks of ``softmax_lab.run_plots``, which uses no matplotlib. Coordinates are
pixels from the top-left corner; a box is ``(x0, y0, x1, y1)`` with x1 and y1 exclusive. Sizes
follow matplotlib's defaults at 100 dpi (10 pt text ≈ 14 px, ticks 5 px long).

What keeps it fast: text is DejaVu Sans (the font matplotlib ships), each string rasterised once
per size and then pasted from a cache (~5 µs, against ~20 µs for FreeType's layout); colour maps
are 256-entry lookup tables; canvases are reused; PNGs are palette images (a third of the bytes
of RGB for zlib, which is still the largest share of a picture's cost).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, TypeAlias

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "BAD",
    "BLACK",
    "BLUES",
    "DRAWING",
    "GREYS",
    "RDBU_R",
    "WHITE",
    "Box",
    "Colour",
    "Palette",
    "Ticks",
    "blank",
    "colour_lut",
    "draw_axes",
    "draw_colourbar",
    "draw_markers",
    "draw_polyline",
    "draw_text",
    "font",
    "format_ticks",
    "map_colours",
    "nice_ticks",
    "palette",
    "save_png",
    "text_size",
    "tints",
]

Colour: TypeAlias = tuple[int, int, int]
Box: TypeAlias = tuple[int, int, int, int]
Ticks: TypeAlias = tuple[Sequence[float] | NDArray[np.float64], Sequence[str]]  # px, labels
PathLike: TypeAlias = str | os.PathLike[str]

WHITE: Colour = (255, 255, 255)
BLACK: Colour = (0, 0, 0)
BAD: Colour = (153, 153, 153)  # NaN in a colour-mapped image
MPL_FONT = Path("mpl-data", "fonts", "ttf", "DejaVuSans.ttf")  # inside the matplotlib package
TICK, PAD = 5, 4  # tick length and tick-to-label gap, px


# ---------------------------------------------------------------------------------------------
# canvases

# Pictures are drawn on reused canvases: a fresh image of a few megabytes comes back from the
# allocator with its pages unmapped, and faulting them in costs ten times more than clearing an
# old one (0.6 against 0.05 ms for 2 MB). DRAWING serialises their use.
DRAWING = threading.Lock()
_BLANKS: OrderedDict[tuple[int, int], Image.Image] = OrderedDict()


def blank(width: int, height: int) -> Image.Image:
    """A white RGB canvas, reused: hold ``DRAWING`` while using it. The next call for the same
    size clears it."""
    canvas = _BLANKS.pop((width, height), None)
    if canvas is None:
        canvas = Image.new("RGB", (width, height), WHITE)
    else:
        canvas.paste(WHITE, (0, 0, width, height))
    _BLANKS[width, height] = canvas  # most recently used last; keep the last six
    while len(_BLANKS) > 6:
        _BLANKS.popitem(last=False)
    return canvas


# ---------------------------------------------------------------------------------------------
# text


@functools.cache
def font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans at ``size`` pixels per em, from matplotlib's package data (found without
    importing matplotlib); Pillow's built-in font when matplotlib is not installed."""
    spec = importlib.util.find_spec("matplotlib")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (path := Path(location) / MPL_FONT).is_file():
            # BASIC layout: no HarfBuzz shaping (these labels need none), 3× faster
            return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)
    fallback = ImageFont.load_default(size)
    if not isinstance(fallback, ImageFont.FreeTypeFont):
        raise RuntimeError(
            "Pillow lacks FreeType, needed for text; pip install --force-reinstall pillow"
        )
    return fallback


@functools.lru_cache(maxsize=4096)
def _text_mask(
    text: str, size: int, anchor: str, vertical: bool
) -> tuple[Image.Image, tuple[int, int]]:
    """``text``'s coverage (mode "L") and its offset from the anchor point."""
    left, top, right, bottom = (int(v) for v in font(size).getbbox(text, anchor=anchor))
    mask = Image.new("L", (max(right - left, 1), max(bottom - top, 1)))
    ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=font(size), anchor=anchor)
    if vertical:  # turned 90° anticlockwise: (u, v) from the anchor goes to (v, −u)
        return mask.transpose(Image.Transpose.ROTATE_90), (top, -right)
    return mask, (left, top)


def draw_text(
    canvas: Image.Image,
    xy: tuple[float, float],
    text: str,
    *,
    size: int,
    fill: Colour = BLACK,
    anchor: str = "la",
    vertical: bool = False,
) -> Box:
    """Draw ``text`` at ``xy`` placed by its Pillow ``anchor`` ("mm": centred); return its box.

    ``vertical`` turns it to read bottom to top, the anchor still naming the text's own edges:
    "md" puts the descender line, now the text's right side, at ``xy``.
    """
    mask, (dx, dy) = _text_mask(text, size, anchor, vertical)
    x, y = round(xy[0]) + dx, round(xy[1]) + dy
    canvas.paste(fill, (x, y), mask)  # clipped at the canvas edges
    return x, y, x + mask.width, y + mask.height


def text_size(text: str, size: int) -> tuple[int, int]:
    """(width, height) in pixels of ``text`` set horizontally."""
    return _text_mask(text, size, "la", False)[0].size


# ---------------------------------------------------------------------------------------------
# colour


def colour_lut(anchors: str) -> NDArray[np.uint8]:
    """A colour map of 256 entries (shape (256, 3), uint8), linear between equally spaced
    anchors ``"#rrggbb #rrggbb …"``, as matplotlib builds ``RdBu`` or ``Blues``."""
    rgb = np.array([[int(a[i : i + 2], 16) for i in (1, 3, 5)] for a in anchors.split()], float)
    at, t = np.linspace(0, 1, len(rgb)), np.linspace(0, 1, 256)
    return np.round(np.stack([np.interp(t, at, ch) for ch in rgb.T], axis=1)).astype(np.uint8)


# ColorBrewer's RdBu reversed (blue negative, #f7f7f7 at 0, red positive) and Blues
RDBU_R = colour_lut(
    "#053061 #2166ac #4393c3 #92c5de #d1e5f0 #f7f7f7 #fddbc7 #f4a582 #d6604d #b2182b #67001f"
)
BLUES = colour_lut("#f7fbff #deebf7 #c6dbef #9ecae1 #6baed6 #4292c6 #2171b5 #08519c #08306b")


def map_colours(
    values: NDArray[np.float64], lut: NDArray[np.uint8], lo: float, hi: float
) -> NDArray[np.uint8]:
    """RGB of ``values`` through ``lut`` over [lo, hi] (clipped), NaN grey, as imshow maps them.

    Returns an array of ``values``'s shape plus (3,), uint8.
    """
    index = np.clip(np.floor((values - lo) / (hi - lo) * 256), 0, 255)
    index = np.where(np.isnan(values), 256, index).astype(np.intp)
    return np.concatenate([lut, np.array([BAD], dtype=np.uint8)])[index]


def ink_on(rgb: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Whether black (True) or white text reads better on each colour of ``rgb`` (..., 3)."""
    return rgb @ np.array([0.299, 0.587, 0.114]) > 127.5


# ---------------------------------------------------------------------------------------------
# ticks


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


# ---------------------------------------------------------------------------------------------
# axes


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
) -> None:
    """Frame ``box``; outward ticks at pixel positions, labelled; axis labels and a title.

    Text is ``size`` px (titles 3 more), tick labels ``tick_size`` (default ``size``). The y
    label keeps 8 px off the widest y tick label; the x label sits below the tick labels.
    """
    tick_size = tick_size or size
    x0, y0, x1, y1 = box
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((x0 - 1, y0 - 1, x1, y1), outline=BLACK)
    for px, label in zip(*xticks, strict=True):
        draw.line((round(px), y1, round(px), y1 + TICK), fill=BLACK)
        draw_text(canvas, (px, y1 + TICK + PAD), label, size=tick_size, anchor="mt")
    left = x0
    for py, label in zip(*yticks, strict=True):
        draw.line((x0 - 1 - TICK, round(py), x0 - 1, round(py)), fill=BLACK)
        text_box = draw_text(canvas, (x0 - TICK - PAD, py), label, size=tick_size, anchor="rm")
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
    square: bool,
) -> None:
    """Filled circles (or squares) ``size`` pixels across centred on ``points`` (p, 2)."""
    r = size / 2
    shape = draw.rectangle if square else draw.ellipse
    for x, y in points.tolist():
        shape((x - r, y - r, x + r, y + r), fill=colour)


# ---------------------------------------------------------------------------------------------
# output


class Palette(NamedTuple):
    """The 256 colours a picture is saved with, and the table its pixels are matched against."""

    colours: bytes  # 256 × RGB
    lookup: Image.Image  # mode "P": each colour rounded down to a multiple of 4 per channel


def palette(*parts: NDArray[np.uint8]) -> Palette:
    """A palette of the colours in ``parts`` (each (n, 3) uint8, 256 in all at most), in order.

    Pillow matches a pixel to the entry nearest its colour rounded down to a multiple of 4 per
    channel (the cells of its colour cache, 64³); matching against entries rounded down alike
    gives every entry's own colour back exactly, unless an earlier entry rounds alike (checked
    by ``tests/test_raster.py``, should Pillow change).
    """
    if sum(map(len, parts)) > 256:
        raise ValueError(f"a palette holds 256 colours, got {sum(map(len, parts))}")
    colours = np.concatenate([*parts, np.zeros((256, 3))])[:256].astype(np.uint8)  # (256, 3)
    lookup = Image.new("P", (1, 1))
    lookup.putpalette((colours & 0xFC).tobytes())
    return Palette(colours.tobytes(), lookup)


def tints(colour: Colour, n: int) -> NDArray[np.uint8]:
    """``n`` colours from ``colour`` to white (shape (n, 3), uint8): its antialiased edges."""
    t = np.linspace(0, 1, n)[:, None]
    return np.round(np.array(colour) * (1 - t) + 255 * t).astype(np.uint8)


# 64 greys, 4 apart (so each keeps its own colour, see ``palette``), black and white exact
GREYS = np.repeat(np.r_[0:252:4, 255][:, None], 3, axis=1).astype(np.uint8)


def save_png(canvas: Image.Image, path: PathLike, colours: Palette) -> Path:
    """Write ``canvas`` (RGB) as an 8-bit palette PNG of ``colours``; return the path.

    Each pixel takes its nearest palette colour: a palette entry's colour exactly, others (colour
    map values between entries, antialiased edges) within a few levels. Against Pillow's RGB
    PNG, a third of the bytes for zlib (level 1 here), the bulk of the cost, and no trial of all
    five row filters on each row: 2.0 against 7.1 ms for the 1000 × 400 curves.
    """
    image = canvas.quantize(palette=colours.lookup, dither=Image.Dither.NONE)
    image.putpalette(colours.colours)
    out = Path(path)
    image.save(out, format="PNG", compress_level=1)
    return out
