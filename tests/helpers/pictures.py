"""Helpers for the picture tests: a run's history to draw, a PNG's size and decoded colours,
and the checks every picture passes (same bytes for the same input, no matplotlib)."""

from __future__ import annotations

import struct
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the file is a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert len(data) > 1000, f"{path} is suspiciously small ({len(data)} bytes)"
    return width, height


def pixels(path: Path) -> NDArray[np.int64]:
    """The decoded PNG (a palette image) as an (H, W, 3) int array of colours."""
    with Image.open(path) as im:
        assert im.mode == "P"
        return np.asarray(im.convert("RGB"), dtype=np.int64)


def near(rgb: NDArray[np.int64], colour: tuple[int, int, int], tol: int = 30) -> NDArray[np.bool_]:
    """Where ``rgb`` (..., 3) is within ``tol`` of ``colour`` in every channel."""
    return (np.abs(rgb - colour) <= tol).all(axis=-1)


def history(epochs: int = 10) -> list[dict[str, float]]:
    """A made-up learning history of ``epochs`` epochs, as ``plot_curves`` takes it."""
    return [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "train_error": 0.3 / e,
            "test_loss": 1.1 / e,
            "test_error": 0.32 / e,
        }
        for e in range(1, epochs + 1)
    ]


Draw = Callable[[Path], Path]  # draws a picture at the path given, returns the path


def assert_same_bytes_for_same_input(
    pairs: Mapping[str, tuple[Draw, Draw]], tmp_path: Path
) -> None:
    """For each named pair (draw a, draw b of another input): a drawn twice gives the same
    bytes, and b other bytes."""
    for name, (draw_a, draw_b) in pairs.items():
        first = draw_a(tmp_path / f"{name}_a1.png").read_bytes()
        other = draw_b(tmp_path / f"{name}_b.png").read_bytes()
        again = draw_a(tmp_path / f"{name}_a2.png").read_bytes()
        assert again == first, name
        assert other != first, name


def assert_never_imports_matplotlib(code: str) -> None:
    """Run ``code``, which draws pictures, in a fresh interpreter; fail if it imported
    matplotlib."""
    check = f"""{code}
import sys
assert "matplotlib" not in sys.modules, "matplotlib imported"
"""
    subprocess.run([sys.executable, "-c", check], check=True, timeout=120)
