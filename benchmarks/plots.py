"""Benchmark: a run's three pictures against one training epoch, in one process.

Run: ``python benchmarks/plots.py [--reps 7]``. The pictures are what ``softmax_lab.run_plots``
draws after each run: learning curves (10 epochs), θ as templates (784×10) and the confusion
matrix (10×10), each written as a PNG. The baseline is one epoch of softmax regression SGD
(lr 0.2, B 100) on 5,000×784 random float32 data, the size of the demo runs. Printed: the first
call, which also pays Pillow's import and font loading, then medians of interleaved warm
repetitions, and the ratio ``pictures / one training epoch`` for both. For scale, also the ratio
to a whole 10-epoch run (``trainer.train``: SGD plus train and test evaluation after each epoch,
1,000 test rows), which is what the pictures are drawn after; the target is warm pictures well
under one such run (a few milliseconds for the three).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import report, side_by_side

from softmax_lab.model import SoftmaxRegression
from softmax_lab.optim import sgd_epoch
from softmax_lab.trainer import train

LR, BATCH, M, N, K, EPOCHS = 0.2, 100, 5000, 784, 10, 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="warm repetitions (median)")
    args = parser.parse_args()
    fresh = "softmax_lab.run_plots" not in sys.modules
    t0 = time.perf_counter()
    from softmax_lab import run_plots  # timed: the import alone (Pillow, colour maps)

    t_import = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    X = rng.random((M, N), dtype=np.float32)
    y = rng.integers(0, K, M).astype(np.uint8)
    Xt, yt = X[:1000].copy(), y[:1000].copy()

    def train_epoch() -> SoftmaxRegression:
        model = SoftmaxRegression(N, K)
        sgd_epoch(model, X, y, lr=LR, batch_size=BATCH)
        return model

    theta = train_epoch().params["theta"]  # (784, 10), the trained values the picture shows
    cm = run_plots.confusion_matrix(y, (X @ theta).argmax(axis=1), K)  # (10, 10)
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
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        pictures = {
            "curves (10 epochs)": lambda: run_plots.plot_curves(history, out / "curves.png"),
            "templates (784×10)": lambda: run_plots.plot_templates(theta, out / "theta.png"),
            "confusion (10×10)": lambda: run_plots.plot_confusion(cm, out / "confusion.png"),
        }

        def all_three() -> None:
            for draw in pictures.values():
                draw()

        print(f"baseline: one SGD epoch of softmax regression, {M}×{N}, lr={LR}, B={BATCH}")
        first = {}
        for name, draw in pictures.items():
            t0 = time.perf_counter()
            draw()
            first[name] = time.perf_counter() - t0
        epoch = statistics.median(side_by_side({"epoch": train_epoch}, args.reps)["epoch"])
        t_first = t_import + sum(first.values())
        print(
            f"first call ({'fresh process' if fresh else 'run_plots already imported'}): "
            f"{t_first * 1e3:.0f} ms = import {t_import * 1e3:.0f} ms + "
            + " + ".join(f"{name} {t * 1e3:.0f} ms" for name, t in first.items())
        )
        print(f"  ratio first-call pictures / one training epoch: {t_first / epoch:.2f}x")

        print(f"warm, medians of {args.reps} interleaved repetitions:")
        times = side_by_side(
            {"one training epoch": train_epoch, **pictures, "all three pictures": all_three},
            args.reps,
        )
        report(times, "one training epoch")
        warm = statistics.median(times["all three pictures"])
        base = statistics.median(times["one training epoch"])
        print(f"  ratio warm pictures / one training epoch: {warm / base:.2f}x")

        def run() -> None:
            train(SoftmaxRegression(N, K), X, y, Xt, yt, lr=LR, batch_size=BATCH, epochs=EPOCHS)

        runs = side_by_side({"run": run}, max(3, args.reps // 2))["run"]
        whole = statistics.median(runs)
        print(
            f"for scale: a {EPOCHS}-epoch run (train + eval each epoch) median "
            f"{whole * 1e3:.0f} ms; warm pictures / run {warm / whole:.2f}x, "
            f"first-call pictures / run {t_first / whole:.2f}x"
        )


if __name__ == "__main__":
    main()
