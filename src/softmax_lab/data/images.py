"""Images to classify: PNG/JPEG pictures, IDX image files and ``.npy`` arrays as MNIST rows.

``read_inputs(paths)`` turns the files ``softmax-lab predict`` is given into one float32 design
matrix (m, 784) in [0, 1], MNIST's scale, with a name per row (``digit.png``,
``t10k-images-idx3-ubyte.gz[17]``). What each kind of file may hold:

- an IDX file (raw or gzipped, any name): images (m, 28, 28), uint8 as MNIST's, or float in
  [0, 1];
- a ``.npy`` file: one image (784,) or (28, 28), or several (m, 784) or (m, 28, 28); uint8
  (0–255) or float in [0, 1];
- a picture Pillow reads (PNG, JPEG, …) of any size, converted by ``mnist_style`` as LeCun's
  MNIST digits were made (see there).

Anything else is a ``softmax_lab.errors.InputError`` naming the file, what was expected and
what was found. Pillow is imported only when a picture is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from softmax_lab.data.idx import read_idx
from softmax_lab.errors import IdxFormatError, InputError

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["SIDE", "mnist_style", "read_inputs"]

SIDE = 28  # MNIST images are SIDE×SIDE
BOX = 20  # the digit is fitted into BOX×BOX, then centred by its centre of mass
INK = 0.1  # a pixel is ink above this fraction of the image's darkest-to-brightest range


def mnist_style(image: Image) -> NDArray[np.float32]:
    """A picture as an MNIST row: (784,) float32 in [0, 1], white ink on black.

    The steps of LeCun's MNIST ("the images were centered in a 28x28 image by computing the
    center of mass of the pixels"):

    1. grey levels (a transparent background counts as white);
    2. inverted when the background is light (the mean of the border pixels above mid-grey), so
       the ink is bright on black as in MNIST;
    3. cropped to the ink's bounding box (pixels above ``INK`` of the range);
    4. resized, keeping its aspect ratio, so its longer side is 20 pixels (anti-aliased);
    5. pasted into a black 28×28 image so that its centre of mass falls on the centre (14, 14);
    6. scaled to [0, 1], its brightest pixel at 1.

    Raises
    ------
    InputError
        An image without ink (one flat grey level).
    """
    from PIL import Image as PILImage

    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = PILImage.alpha_composite(white, rgba)
    grey = np.asarray(image.convert("L"), dtype=np.float32)  # (H, W), 0..255
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if border.mean() > 127.5:  # dark ink on a light background: MNIST's ink is bright
        grey = 255.0 - grey
    grey -= grey.min()  # the background at 0
    top = float(grey.max())
    if top <= 0:
        raise InputError("the picture is one flat grey level: no digit to classify")
    rows, cols = np.nonzero(grey > INK * top)
    digit = grey[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = digit.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # (width, height) for Pillow
    fitted = np.asarray(
        PILImage.fromarray(digit).resize(size, PILImage.Resampling.LANCZOS), dtype=np.float32
    )
    fitted = np.clip(fitted, 0, None)  # Lanczos rings slightly below 0
    # centre of mass of the fitted digit, then the offset that puts it on the canvas centre
    total = fitted.sum()
    ys, xs = np.indices(fitted.shape)
    cy, cx = (ys * fitted).sum() / total, (xs * fitted).sum() / total
    top_left = (round(SIDE / 2 - cy - 0.5), round(SIDE / 2 - cx - 0.5))
    canvas = np.zeros((SIDE, SIDE), dtype=np.float32)
    _paste(canvas, fitted, top_left)
    canvas /= canvas.max()
    return canvas.reshape(-1)


def _paste(canvas: NDArray[np.float32], patch: NDArray[np.float32], at: tuple[int, int]) -> None:
    """Put ``patch`` on ``canvas`` with its top-left corner at ``at``, clipped to the canvas
    (a centre of mass far off the middle can push a 20-pixel digit past a border)."""
    y, x = at
    y0, x0 = max(y, 0), max(x, 0)
    y1, x1 = min(y + patch.shape[0], canvas.shape[0]), min(x + patch.shape[1], canvas.shape[1])
    canvas[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]


def _as_rows(array: NDArray[Any], source: str) -> NDArray[np.float32]:
    """(784,), (28, 28), (m, 784) or (m, 28, 28), uint8 or float in [0, 1] -> (m, 784) float32."""
    n = SIDE * SIDE
    shape = array.shape
    if shape in ((n,), (SIDE, SIDE)):
        array = array.reshape(1, n)
    elif (array.ndim == 2 and shape[1] == n) or (array.ndim == 3 and shape[1:] == (SIDE, SIDE)):
        array = array.reshape(shape[0], n)
    else:
        raise InputError(
            f"{source}: expected images of shape (784,), (28, 28), (m, 784) or (m, 28, 28), "
            f"got {shape}"
        )
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255)
    if array.dtype.kind != "f":
        raise InputError(f"{source}: expected uint8 pixels or floats in [0, 1], got {array.dtype}")
    X = array.astype(np.float32)
    if X.size and not np.isfinite(X).all():
        raise InputError(f"{source}: float pixels must lie in [0, 1], got NaN or infinity")
    if X.size and not (X.min() >= 0 and X.max() <= 1):
        raise InputError(
            f"{source}: float pixels must lie in [0, 1] (MNIST's scale), got values in "
            f"[{X.min():g}, {X.max():g}]; divide 0-255 pixels by 255"
        )
    return X


def _read_one(path: Path) -> tuple[NDArray[np.float32], list[str]]:
    """One file's rows and their names."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open("rb") as f:
        head = f.read(4)
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise InputError(f"{path}: not a readable .npy array: {err}") from err
        X = _as_rows(np.asarray(array), str(path))
    elif head[:2] == b"\x1f\x8b" or head[:2] == b"\x00\x00":  # gzip, or an IDX magic
        try:
            array = read_idx(path)
        except IdxFormatError as err:
            raise InputError(f"{path}: not an IDX image file: {err}") from err
        if array.ndim != 3:
            raise InputError(
                f"{path}: expected IDX images of shape (m, 28, 28), got shape {array.shape}"
                + (" (a labels file?)" if array.ndim == 1 else "")
            )
        X = _as_rows(array, str(path))
    else:
        X = _read_picture(path)[None, :]
    if X.shape[0] == 1:
        return X, [path.name]
    return X, [f"{path.name}[{i}]" for i in range(X.shape[0])]


def _read_picture(path: Path) -> NDArray[np.float32]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return mnist_style(image)
    except UnidentifiedImageError as err:
        raise InputError(
            f"{path}: not an image Pillow can read, an IDX file or a .npy array"
        ) from err
    except (OSError, SyntaxError) as err:  # truncated or corrupt picture data
        raise InputError(f"{path}: unreadable image: {err}") from err
    except InputError as err:
        raise InputError(f"{path}: {err}") from err


def read_inputs(paths: Sequence[str | Path]) -> tuple[NDArray[np.float32], list[str]]:
    """The rows to classify in ``paths``, in order.

    Returns
    -------
    X : ndarray of shape (m, 784), float32 in [0, 1]
    names : list of m str
        The file name, with ``[i]`` for the i-th image of a file holding several.

    Raises
    ------
    InputError
        A missing file, or one that is not an image, IDX image file or ``.npy`` of images.
    """
    if not paths:
        raise InputError("no input files given")
    parts = [_read_one(Path(p)) for p in paths]
    X = np.concatenate([x for x, _ in parts]) if parts else np.empty((0, SIDE * SIDE), np.float32)
    return X, [name for _, names in parts for name in names]
