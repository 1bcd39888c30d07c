"""Shared helpers for the benchmark scripts: data to time on, and side-by-side medians."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

Arrays = tuple[NDArray[np.float32], NDArray[np.uint8], NDArray[np.float32], NDArray[np.uint8]]


def benchmark_data() -> tuple[str, Arrays]:
    """Fashion-MNIST (60k×784) when installed, else uniform random data of the same shape."""
    from softmax_lab.data.sources import load_dataset
    from softmax_lab.errors import DatasetError

    try:
        d = load_dataset("fashion_mnist", download=False)
        return "fashion_mnist", (d.X_train, d.y_train, d.X_test, d.y_test)
    except DatasetError:
        rng = np.random.default_rng(0)
        X = rng.random((70000, 784), dtype=np.float32)
        y = rng.integers(0, 10, 70000).astype(np.uint8)
        return "random 60k×784", (X[:60000], y[:60000], X[60000:], y[60000:])


def side_by_side(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, list[float]]:
    """Time each function ``reps`` times, interleaved so machine load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def report(times: dict[str, list[float]], baseline: str) -> None:
    """Print min/median/max per function and each median's ratio to the baseline's median."""
    base = statistics.median(times[baseline])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(
            f"  {name:<34} median {med * 1e3:8.1f} ms  (min {min(ts) * 1e3:.1f}, "
            f"max {max(ts) * 1e3:.1f})  ratio {med / base:.2f}x"
        )


def train_argv(*overrides: str, python: str = sys.executable) -> list[str]:
    """``softmax-lab train -m OVERRIDES…`` as a process's argv, run by ``python``."""
    return [python, "-m", "softmax_lab", "train", "-m", *overrides]
