"""Data limits and tick marks for ``pictures.raster`` axes: where ticks go, their labels.

Pure functions of numbers and strings (label widths come from ``raster.text_size``); the axes
that draw them are in ``softmax_lab.pictures.axes``, which re-exports these names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from softmax_lab.pictures.raster import fit_text, text_size

__all__ = ["fit_tick_labels", "format_ticks", "limits", "nice_ticks"]


def limits(values: NDArray[np.float64]) -> tuple[float, float]:
    """The range of the finite ``values`` with 5 % margins; ±5 % around a single value."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo <= 1e-9 * abs(lo):
        half = 0.05 * abs(lo) or 0.5
        return lo - half, hi + half
    return lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)


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


def fit_tick_labels(
    labels: Sequence[str], room: float, *, size: int = 14, smallest: int = 10, thin: bool = False
) -> tuple[list[str], int, int]:
    """Make side-by-side tick labels fit ``room`` pixels each: ``(labels, size, every)``.

    The largest size from ``size`` down to ``smallest`` at which the widest label fits; failing
    that, at ``smallest``, a label on every ``every``-th tick only (``thin``, for many ticks) or
    each label shortened with "…".
    """

    def widest(s: int) -> int:
        return max((text_size(label, s)[0] for label in labels), default=0)

    for s in range(size, smallest - 1, -1):
        if widest(s) <= room:
            return list(labels), s, 1
    if thin:
        return list(labels), smallest, math.ceil((widest(smallest) + 6) / max(room, 1))
    return [fit_text(label, room, smallest, smallest=smallest)[0] for label in labels], smallest, 1
