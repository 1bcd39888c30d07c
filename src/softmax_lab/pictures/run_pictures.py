"""A run's three pictures drawn into one directory from plain arrays, in one call.

Learning curves (``curves.png``), the weights as image templates (θ's columns, or an MLP's
first hidden units) and the test confusion matrix (``confusion.png``): what every trained run
logs under ``plots/``. A run draws them itself, in a few milliseconds, before it is closed, so a
FINISHED run always has all its artifacts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from softmax_lab.pictures.confusion import plot_confusion
from softmax_lab.pictures.curves import plot_curves
from softmax_lab.pictures.templates import plot_templates

__all__ = ["draw_run_pictures"]


def draw_run_pictures(
    plot_dir: Path,
    *,
    history: Sequence[Mapping[str, float]],
    templates: NDArray[np.floating],
    template_titles: Sequence[str],
    template_file: str,
    confusion: NDArray[np.integer],
) -> list[Path]:
    """Draw a run's curves, templates and confusion matrix as PNGs in ``plot_dir``.

    Parameters
    ----------
    plot_dir : pathlib.Path
        Where the pictures go; created if missing.
    history : sequence of mappings, one per epoch
        ``plot_curves``'s input: ``epoch, train_loss, train_error, test_loss, test_error``
        (and ``val_loss, val_error`` with a validation split).
    templates : ndarray of shape (n, c), float
        One template per column: θ (n, k), or W1's first hidden units (n, 16). Tiled 5 to a
        row for up to 10 columns, else 8.
    template_titles : sequence of c str
        The tiles' labels.
    template_file : str
        The templates' file name, e.g. ``"theta.png"`` or ``"W1.png"``.
    confusion : ndarray of shape (k, k), int
        Test counts, rows true class, columns predicted class.

    Returns
    -------
    list of pathlib.Path
        The three PNGs: curves, templates, confusion matrix.
    """
    plot_dir.mkdir(parents=True, exist_ok=True)
    ncols = 5 if templates.shape[1] <= 10 else 8
    return [
        plot_curves(history, plot_dir / "curves.png"),
        plot_templates(templates, plot_dir / template_file, titles=template_titles, ncols=ncols),
        plot_confusion(confusion, plot_dir / "confusion.png"),
    ]
