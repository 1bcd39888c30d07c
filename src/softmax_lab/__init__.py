"""softmax-lab: softmax regression and a two-layer net on MNIST-format data, tracked in MLflow."""

from __future__ import annotations

__version__ = "0.1.0"
