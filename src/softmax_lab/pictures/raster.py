"""A Pillow RGB canvas and what goes on it besides axes: text, colour maps, palette PNG output.

The base of every picture in ``softmax_lab`` (none uses matplotlib); ticks, axes, colourbars
and lines are in ``softmax_lab.pictures.axes``. Coordinates are pixels from the top-left corner;
a box is ``(x0, y0, x1, y1)`` with x1 and y1 exclusive. Sizes follow matplotlib's defaults at
100 dpi (10 pt text ≈ 14 px).

What keeps it fast: text is DejaVu Sans (the font matplotlib ships), each string rasterised once
per size and then pasted from a cache (~5 µs, against ~20 µs for FreeType's layout); colour maps
are 256-entry lookup tables; canvases are reused; PNGs are palette images (a third of the bytes
of RGB for zlib, which is still the largest share of a picture's cost).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple, TypeAlias

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from softmax_lab.data.files import write_atomically

__all__ = [
    "BAD",
    "BLACK",
    "BLUES",
    "DRAWING",
    "GREYS",
    "LABEL",
    "RDBU_R",
    "SMALL",
    "TAB10",
    "TITLE",
    "VIRIDIS",
    "WHITE",
    "Box",
    "Colour",
    "Palette",
    "blank",
    "colour_lut",
    "draw_text",
    "draw_title",
    "fit_text",
    "font",
    "ink_on",
    "map_colours",
    "palette",
    "save_png",
    "text_size",
    "tints",
]

logger = logging.getLogger(__name__)

Colour: TypeAlias = tuple[int, int, int]
Box: TypeAlias = tuple[int, int, int, int]
PathLike: TypeAlias = str | os.PathLike[str]

WHITE: Colour = (255, 255, 255)
BLACK: Colour = (0, 0, 0)
BAD: Colour = (153, 153, 153)  # NaN in a colour-mapped image
FONT_FILE = "DejaVuSans.ttf"
MPL_FONT = Path("mpl-data", "fonts", "ttf", FONT_FILE)  # inside the matplotlib package
# matplotlib's "tab10", the colours C0 … C9 of its line plots
TAB10: tuple[Colour, ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


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

TITLE, LABEL, SMALL = 17, 14, 11  # px: titles; axis and tick labels; cell values and legends


@functools.cache
def _font_path() -> str | None:
    """DejaVu Sans from matplotlib's package data (found without importing matplotlib), else
    from the system's fonts; None when neither has it."""
    spec = importlib.util.find_spec("matplotlib")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (path := Path(location) / MPL_FONT).is_file():
            return str(path)
    try:  # Pillow looks in the platform's font directories
        return str(ImageFont.truetype(FONT_FILE, 10).path)
    except OSError:
        return None


@functools.cache
def font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans at ``size`` pixels per em; Pillow's built-in font when it is not found."""
    if (path := _font_path()) is not None:
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


def fit_text(text: str, room: float, size: int, *, smallest: int) -> tuple[str, int]:
    """``text`` and the largest size from ``size`` down to ``smallest`` at which it is at most
    ``room`` pixels wide; at ``smallest`` shortened with "…" when it is still too wide."""
    for s in range(size, smallest - 1, -1):
        if text_size(text, s)[0] <= room:
            return text, s
    cut = len(text)
    while cut > 1 and text_size(text[:cut] + "…", smallest)[0] > room:
        cut -= 1
    return text[:cut] + "…", smallest


def draw_title(
    canvas: Image.Image, text: str, centre: float, room: float, *, y: int, size: int = TITLE
) -> None:
    """``text`` centred on x = ``centre`` with its top at ``y``, made to fit ``room`` px: set
    smaller, down to 12 px, then on two lines of 12 px (28 px in all), the second shortened."""
    smallest = min(size, 12)
    words = text.split(" ")
    if text_size(text, smallest)[0] <= room or len(words) == 1:
        text, size = fit_text(text, room, size, smallest=smallest)
        draw_text(canvas, (centre, y), text, size=size, anchor="ma")
        return
    cut = next(
        k
        for k in range(len(words) - 1, 0, -1)
        if text_size(" ".join(words[:k]), smallest)[0] <= room or k == 1
    )
    lines = (" ".join(words[:cut]), " ".join(words[cut:]))
    for row, line in enumerate(lines):
        line = fit_text(line, room, smallest, smallest=smallest)[0]
        draw_text(canvas, (centre, y + 14 * row), line, size=smallest, anchor="ma")


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
# matplotlib's viridis from every 16th of its entries: within 6 levels of it everywhere
VIRIDIS = colour_lut(
    "#440154 #48186a #472d7b #424086 #3b528b #33638d #2c728e #26828e #21918c #1f9f88 #27ad81 "
    "#3dbc74 #5cc863 #81d34d #aadc32 #d5e21a #fde725"
)


def map_colours(
    values: NDArray[np.float64],
    lut: NDArray[np.uint8],
    lo: float,
    hi: float,
    *,
    bad: Colour = BAD,
) -> NDArray[np.uint8]:
    """RGB of ``values`` through ``lut`` over [lo, hi] (clipped), NaN ``bad``, as imshow maps
    them.

    Returns an array of ``values``'s shape plus (3,), uint8.
    """
    index = np.clip(np.floor((values - lo) / (hi - lo) * 256), 0, 255)
    index = np.where(np.isnan(values), 256, index).astype(np.intp)
    return np.concatenate([lut, np.array([bad], dtype=np.uint8)])[index]


def ink_on(rgb: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Whether black (True) or white text reads better on each colour of ``rgb`` (..., 3)."""
    return rgb @ np.array([0.299, 0.587, 0.114]) > 127.5


def tints(colour: Colour, n: int) -> NDArray[np.uint8]:
    """``n`` colours from ``colour`` to white (shape (n, 3), uint8): its antialiased edges."""
    t = np.linspace(0, 1, n)[:, None]
    return np.round(np.array(colour) * (1 - t) + 255 * t).astype(np.uint8)


# 64 greys, 4 apart (so each keeps its own colour, see ``palette``), black and white exact
GREYS = np.repeat(np.r_[0:252:4, 255][:, None], 3, axis=1).astype(np.uint8)


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
    by ``tests/pictures/test_raster.py``, should Pillow change).
    """
    if sum(map(len, parts)) > 256:
        raise ValueError(f"a palette holds 256 colours, got {sum(map(len, parts))}")
    colours = np.concatenate([*parts, np.zeros((256, 3))])[:256].astype(np.uint8)  # (256, 3)
    lookup = Image.new("P", (1, 1))
    lookup.putpalette((colours & 0xFC).tobytes())
    return Palette(colours.tobytes(), lookup)


def save_png(
    canvas: Image.Image, path: PathLike, colours: Palette, *, started: float | None = None
) -> Path:
    """Write ``canvas`` (RGB) as an 8-bit palette PNG of ``colours``; return the path.

    Each pixel takes its nearest palette colour: a palette entry's colour exactly, others (colour
    map values between entries, antialiased edges) within a few levels. Against Pillow's RGB
    PNG, a third of the bytes for zlib (level 1 here), the bulk of the cost, and no trial of all
    five row filters on each row: 2.0 against 7.1 ms for the 1000 × 400 curves. ``started``
    (a ``time.perf_counter()``) logs the time since, at debug level.
    """
    image = canvas.quantize(palette=colours.lookup, dither=Image.Dither.NONE)
    image.putpalette(colours.colours)
    out = Path(path)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    write_atomically(out, buffer.getvalue())  # a full disk leaves no truncated PNG
    if started is not None:
        logger.debug("wrote %s in %.1f ms", out, (time.perf_counter() - started) * 1e3)
    return out
