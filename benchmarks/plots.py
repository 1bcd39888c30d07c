"""Benchmark: a run's three pictures and a sweep's two against one training epoch.

Run: ``python benchmarks/plots.py [--reps 7]``. The run's pictures are what
``softmax_lab.pictures.run_pictures`` draws after each run: learning curves (10 epochs), θ as
templates (784×10) and the confusion matrix (10×10). The sweep's are what
``pictures.sweep_heatmap`` and ``pictures.sweep_curves`` draw at the end of a sweep (and
``compare --plot``): the heatmap of final test error over a 27-run sweep (3 params × 3 values:
3×3 cells in 3 panels) and the 27 runs' 10-epoch test-error curves overlaid. Each is written
as a PNG. The baseline is one epoch of softmax regression SGD (lr 0.2, B 100) on 5,000×784
random float32 data, the size of the demo runs. Printed for each group:
the first call, which also pays the module's import (Pillow, font loading; the sweep's after the
run's, as in a sweep's process), then medians of interleaved warm repetitions, and the ratios
``pictures / one training epoch``. Last, the run's pictures against the training of the demo
sweep's 12 runs (``experiments/demo.yaml``, on mnist_5k's 4,000 training digits, with the
per-epoch evaluation a job does), which is what they are drawn after: the target is pictures
well under a demo run's training. matplotlib, which drew all these pictures before, took
~150 ms warm for a run's three and ~0.35 s warm (~0.7 s first call) for a sweep's two.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd  # loaded before a sweep draws its pictures: not part of their cost
from _common import report, side_by_side

from softmax_lab.core.model import SoftmaxRegression
from softmax_lab.core.optim import sgd_epoch
from softmax_lab.core.training import train

LR, BATCH, M, N, K, EPOCHS = 0.2, 100, 5000, 784, 10, 10
SWEEP = {
    "optim.lr": (0.05, 0.1, 0.2),
    "optim.batch_size": (50, 100, 200),
    "optim.epochs": (3, 5, 10),
}
DEMO = {"optim.lr": (0.05, 0.2, 0.5), "optim.batch_size": (50, 100), "optim.epochs": (3, 6)}
Pictures = dict[str, Callable[[], object]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="warm repetitions (median)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.random((M, N), dtype=np.float32)
    y = rng.integers(0, K, M).astype(np.uint8)

    def train_epoch() -> SoftmaxRegression:
        model = SoftmaxRegression(N, K)
        sgd_epoch(model, X, y, lr=LR, batch_size=BATCH)
        return model

    print(f"baseline: one SGD epoch of softmax regression, {M}×{N}, lr={LR}, B={BATCH}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run_first, run_warm = _time_group(
            "a run's three pictures",
            lambda: _run_pictures(train_epoch, X, y, out),
            train_epoch,
            "softmax_lab.pictures.curves",
            args.reps,
        )
        _time_group(
            "a sweep's two pictures",
            lambda: _sweep_pictures(rng, out),
            train_epoch,
            "softmax_lab.pictures.sweep_heatmap",
            args.reps,
        )

    _against_demo_runs(run_warm, run_first, max(3, args.reps // 2))


def _against_demo_runs(run_warm: float, run_first: float, reps: int) -> None:
    """The run's pictures against the training of the demo sweep's 12 runs (``experiments/
    demo.yaml``: lr × batch × epochs on mnist_5k, trained and evaluated each epoch as a job
    does), the target being pictures well under a demo run's training."""
    from softmax_lab.data.sources import load_dataset

    d = load_dataset("mnist_5k")
    configs = list(itertools.product(*DEMO.values()))

    def demo_run(lr: float, batch: int, epochs: int) -> Callable[[], object]:
        return lambda: train(
            SoftmaxRegression(d.n_features, d.n_classes),
            d.X_train,
            d.y_train,
            d.X_test,
            d.y_test,
            lr=lr,
            batch_size=batch,
            epochs=epochs,
        )

    times = side_by_side({str(c): demo_run(*c) for c in configs}, reps)
    runs = sorted(statistics.median(ts) for ts in times.values())
    median, shortest = statistics.median(runs), runs[0]
    print(
        f"\nthe demo sweep's 12 runs ({d.X_train.shape[0]} training digits, lr × B × E = "
        f"{' × '.join(str(v) for v in DEMO.values())}), training and per-epoch evaluation, "
        f"medians of {reps}: median run {median * 1e3:.1f} ms, shortest {shortest * 1e3:.1f} ms"
    )
    print(
        f"  a run's warm pictures / median demo run: {run_warm / median:.2f}x, "
        f"/ shortest demo run: {run_warm / shortest:.2f}x "
        f"(first call in a fresh process: {run_first / median:.2f}x, once per process)"
    )


def _time_group(
    what: str,
    setup: Callable[[], Pictures],
    train_epoch: Callable[[], object],
    module: str,
    reps: int,
) -> tuple[float, float]:
    """Print the first call (import included) and warm medians of ``setup()``'s pictures
    against one training epoch; return (first call, warm median of all) in seconds."""
    fresh = module not in sys.modules
    t0 = time.perf_counter()
    pictures = setup()  # imports the module: timed
    t_import = time.perf_counter() - t0
    first = {}
    for name, draw in pictures.items():
        t0 = time.perf_counter()
        draw()
        first[name] = time.perf_counter() - t0

    def every() -> None:
        for draw in pictures.values():
            draw()

    epoch = statistics.median(side_by_side({"epoch": train_epoch}, reps)["epoch"])
    t_first = t_import + sum(first.values())
    print(f"\n{what}")
    print(
        f"first call ({'fresh import' if fresh else module + ' already imported'}): "
        f"{t_first * 1e3:.0f} ms = import {t_import * 1e3:.0f} ms + "
        + " + ".join(f"{name} {t * 1e3:.0f} ms" for name, t in first.items())
    )
    print(f"  ratio first-call pictures / one training epoch: {t_first / epoch:.2f}x")
    print(f"warm, medians of {reps} interleaved repetitions:")
    times = side_by_side({"one training epoch": train_epoch, **pictures, "all": every}, reps)
    report(times, "one training epoch")
    warm = statistics.median(times["all"])
    base = statistics.median(times["one training epoch"])
    print(f"  ratio warm pictures / one training epoch: {warm / base:.2f}x")
    return t_first, warm


def _run_pictures(
    train_epoch: Callable[[], SoftmaxRegression], X: np.ndarray, y: np.ndarray, out: Path
) -> Pictures:
    from softmax_lab.core import loss
    from softmax_lab.pictures import confusion, curves, templates

    theta = train_epoch().params["theta"]  # (784, 10), the trained values the picture shows
    cm = loss.confusion_matrix(y, (X @ theta).argmax(axis=1), K)  # (10, 10)
    history = [
        {
            "epoch": e,
            "train_loss": 1 / e,
            "train_error": 0.3 / e,
            "test_loss": 1.1 / e,
            "test_error": 0.32 / e,
        }
        for e in range(1, EPOCHS + 1)
    ]
    return {
        "curves (10 epochs)": lambda: curves.plot_curves(history, out / "curves.png"),
        "templates (784×10)": lambda: templates.plot_templates(theta, out / "theta.png"),
        "confusion (10×10)": lambda: confusion.plot_confusion(cm, out / "confusion.png"),
    }


def _sweep_pictures(rng: np.random.Generator, out: Path) -> Pictures:
    """The heatmap and overlaid curves of a 27-run sweep, as ``sweep_report`` draws them."""
    from softmax_lab.pictures import sweep_curves, sweep_heatmap

    grid = list(itertools.product(*SWEEP.values()))
    table = pd.DataFrame(grid, columns=list(SWEEP))
    table["test/error"] = 0.15 + 0.05 * rng.random(len(table))
    curves = {
        f"lr={lr} batch_size={b} epochs={e}": [
            (epoch, 0.4 / epoch**0.3 + 0.02 * rng.random()) for epoch in range(1, 11)
        ]
        for lr, b, e in grid
    }
    title = f"final test/error over {len(table)} runs"
    return {
        "sweep heatmap (27 runs)": lambda: sweep_heatmap.plot_sweep_heatmap(
            table, out / "heatmap.png", params=list(SWEEP), title=title
        ),
        "overlaid curves (27 runs)": lambda: sweep_curves.plot_overlaid_curves(
            curves, out / "sweep_curves.png", ylabel="test/error", title="test/error per epoch"
        ),
    }


if __name__ == "__main__":
    main()
