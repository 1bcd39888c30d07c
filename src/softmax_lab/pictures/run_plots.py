"""A run's pictures as PNG files for the tracking UI, drawn with Pillow and NumPy: one import.

Learning curves (``plot_curves``, in ``softmax_lab.pictures.curves``), weights as image templates
(``plot_templates`` and ``tile_images``, ``softmax_lab.pictures.templates``) and the test confusion
matrix (``plot_confusion`` and ``confusion_matrix``, ``softmax_lab.pictures.confusion``). Each
picture has a fixed pixel size that depends only on the input's shape, and the same input gives
the same bytes. The per-sweep pictures are in ``softmax_lab.pictures.sweep_pictures``.

Cost, measured by ``benchmarks/plots.py``: ~11 ms warm for the three (curves 6, templates 3,
confusion 3), where matplotlib took ~150 ms, its text layout alone more than a demo run's
training. No matplotlib (it is never imported): images are lookups into 256-colour tables
scaled by nearest-neighbour resampling, text is pasted from a cache of rasterised strings, only
the curves' lines are antialiased (their panel drawn at 2× and halved), and the PNGs are
palette images, a third of the bytes for zlib, still the largest share (``pictures.raster``).
"""

from __future__ import annotations

from softmax_lab.core.loss import confusion_matrix
from softmax_lab.pictures.confusion import plot_confusion
from softmax_lab.pictures.curves import HISTORY_KEYS, plot_curves
from softmax_lab.pictures.templates import plot_templates, tile_images

__all__ = [
    "HISTORY_KEYS",
    "confusion_matrix",
    "plot_confusion",
    "plot_curves",
    "plot_templates",
    "tile_images",
]
