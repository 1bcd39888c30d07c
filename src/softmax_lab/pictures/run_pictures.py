"""A run's pictures (curves, θ or W1 templates, confusion matrix), drawn after it trains.

They are drawn with plain arrays and Pillow (``softmax_lab.pictures.run_plots``), in a few
milliseconds, so the run draws them itself, in its own process, before it is closed: a
FINISHED run always has all its artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["PictureJob", "render"]


@dataclass(frozen=True)
class PictureJob:
    """Everything needed to draw a finished run's pictures."""

    plot_dir: Path
    history: list[dict[str, float]]
    templates: NDArray[np.float32]  # θ (n, k), or W1's first 16 columns (n, 16)
    template_titles: list[str]
    template_file: str  # "theta.png" or "W1.png"
    confusion: NDArray[np.int64]  # (k, k)


def render(job: PictureJob) -> list[Path]:
    """Draw the three PNGs into ``job.plot_dir``; return their paths."""
    from softmax_lab.pictures import confusion, curves, templates

    job.plot_dir.mkdir(parents=True, exist_ok=True)
    ncols = 5 if job.templates.shape[1] <= 10 else 8
    return [
        curves.plot_curves(job.history, job.plot_dir / "curves.png"),
        templates.plot_templates(
            job.templates,
            job.plot_dir / job.template_file,
            titles=job.template_titles,
            ncols=ncols,
        ),
        confusion.plot_confusion(job.confusion, job.plot_dir / "confusion.png"),
    ]
