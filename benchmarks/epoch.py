"""Benchmark: the trainer's SGD epoch and the reference run against textbook NumPy.

Run: ``python benchmarks/epoch.py [--reps 7]``. Prints medians of interleaved repetitions and
the ratio of each to the textbook baseline, all in this one process. Target: trainer epoch
≤ 0.6× the textbook epoch (the textbook as the lecture's pseudo-code is usually typed:
θ = np.zeros((n, k)), i.e. float64, a one-hot matrix, exp then divide, X.T @ (Z - Y)).
The same textbook with float32 θ is printed too, so the gain from float32 alone is visible.
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import benchmark_data, report, side_by_side

from softmax_lab.core.model import SoftmaxRegression
from softmax_lab.core.optim import sgd_epoch
from softmax_lab.core.textbook import evaluate as textbook_evaluate
from softmax_lab.core.textbook import softmax_epoch
from softmax_lab.core.training import train

LR, BATCH, EPOCHS = 0.2, 100, 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="repetitions per variant (median)")
    args = parser.parse_args()
    name, (X, y, Xt, yt) = benchmark_data()
    n, k = X.shape[1], 10
    print(f"data: {name}, X_train {X.shape}, X_test {Xt.shape}")

    print(f"one epoch, lr={LR}, B={BATCH}, in order:")
    times = side_by_side(
        {
            "textbook (theta float64)": lambda: softmax_epoch(
                X, y, np.zeros((n, k)), lr=LR, batch=BATCH
            ),
            "textbook (theta float32)": lambda: softmax_epoch(
                X, y, np.zeros((n, k), np.float32), lr=LR, batch=BATCH
            ),
            "softmax_lab sgd_epoch": lambda: sgd_epoch(
                SoftmaxRegression(n, k), X, y, lr=LR, batch_size=BATCH
            ),
        },
        args.reps,
    )
    report(times, "textbook (theta float64)")

    def textbook_run() -> None:
        theta = np.zeros((n, k))
        for _ in range(EPOCHS):
            softmax_epoch(X, y, theta, lr=LR, batch=BATCH)
            textbook_evaluate(X, y, theta)
            textbook_evaluate(Xt, yt, theta)

    def trainer_run() -> None:
        train(SoftmaxRegression(n, k), X, y, Xt, yt, lr=LR, batch_size=BATCH, epochs=EPOCHS)

    print(f"reference run: {EPOCHS} epochs, eval on train and test after each:")
    report(
        side_by_side(
            {"textbook (theta float64)": textbook_run, "softmax_lab train": trainer_run},
            max(3, args.reps // 2),
        ),
        "textbook (theta float64)",
    )


if __name__ == "__main__":
    main()
