"""Benchmark: one SGD epoch of the two-layer net (h = 400) against textbook NumPy.

Run: ``python benchmarks/mlp_epoch.py [--reps 5]``. Prints medians of interleaved repetitions
and the ratio of each to the textbook baseline, all in this one process. Issue target:
``sgd_epoch(TwoLayerNet)`` ≤ 0.7× the textbook epoch run on float32 W1/W2 (the textbook typed
with float64 weights is printed too, for reference, as in ``epoch.py``).

Both do the same five GEMMs per batch (X W1, A W2, Aᵀ G, G W2ᵀ, Xᵀ G1), which dominate, so
two floors are printed next to them: the five GEMMs alone, into preallocated buffers, and the
five GEMMs plus the two in-place ``p −= step`` subtractions that the generic SGD loop does: the
least any model can cost in that loop with these GEMMs. On a shared machine, two BLAS threads make
every variant noisy (a spinning BLAS thread loses its core); ``OPENBLAS_NUM_THREADS=1`` gives
steady numbers.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import benchmark_data, report, side_by_side
from numpy.typing import NDArray

from softmax_lab.core.model import TwoLayerNet
from softmax_lab.core.optim import sgd_epoch
from softmax_lab.core.textbook import mlp_epoch

LR, BATCH, HIDDEN, K = 0.2, 100, 400, 10
BASELINE = "textbook (W float32)"
OURS = "softmax_lab sgd_epoch(TwoLayerNet)"
FLOOR = "floor: 5 GEMMs per batch"
FLOOR_UPDATE = "floor: 5 GEMMs + 2 subtracts"


def gemm_floor(
    X: NDArray[np.float32], W1: NDArray[np.float32], W2: NDArray[np.float32], *, update: bool
) -> Callable[[], None]:
    """One epoch of only the matrix products (and, with ``update``, ``W −= step``).

    Same shapes and memory layouts as ``TwoLayerNet``; the values are fixed stand-ins, which
    does not change what BLAS does.
    """
    W1, W2 = W1.copy(), W2.copy()
    h = W1.shape[1]
    A = np.empty((BATCH, h), np.float32)
    H = np.empty((BATCH, K), np.float32, order="F")  # F-ordered logits, as in TwoLayerNet
    G = np.asfortranarray(np.random.default_rng(1).standard_normal((BATCH, K), np.float32) * 1e-3)
    G1 = np.empty((BATCH, h), np.float32)
    gW1, gW2 = np.empty_like(W1), np.empty_like(W2)

    def epoch() -> None:
        for start in range(0, X.shape[0] - BATCH + 1, BATCH):  # 60000 rows: whole batches
            Xb = X[start : start + BATCH]
            np.matmul(Xb, W1, out=A)  # (B, h)
            np.matmul(A, W2, out=H)  # (B, k)
            np.matmul(A.T, G, out=gW2)  # (h, k)
            np.matmul(G, W2.T, out=G1)  # (B, h)
            np.matmul(Xb.T, G1, out=gW1)  # (n, h)
            if update:
                # keep W1 fixed (so repetitions are alike) but pay for the same memory traffic
                np.subtract(W1, gW1, out=gW1)
                np.subtract(W2, gW2, out=gW2)

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions per variant (median)")
    args = parser.parse_args()
    name, (X, y, _, _) = benchmark_data()
    n = X.shape[1]
    print(f"data: {name}, X_train {X.shape}, two-layer net h={HIDDEN}")

    # Every variant starts from the same weights; models and copies are built outside the
    # timed calls, one per call, so initialisation is not timed.
    init = TwoLayerNet(n, K, hidden_dim=HIDDEN, rng=np.random.default_rng(0)).params
    W1_0, W2_0 = init["W1"], init["W2"]
    calls = args.reps + 1  # + one warm-up round
    models = [
        TwoLayerNet(n, K, hidden_dim=HIDDEN, rng=np.random.default_rng(0)) for _ in range(calls)
    ]
    w32 = [(W1_0.copy(), W2_0.copy()) for _ in range(calls)]
    # float64 on purpose (a reference variant), hence Any: mlp_epoch is typed for float32
    w64: list[tuple[NDArray[Any], NDArray[Any]]] = [
        (W1_0.astype(np.float64), W2_0.astype(np.float64)) for _ in range(calls)
    ]
    it_models, it32, it64 = iter(models), iter(w32), iter(w64)
    variants: dict[str, Callable[[], object]] = {
        "textbook (W float64)": lambda: mlp_epoch(X, y, *next(it64), lr=LR, batch=BATCH),
        BASELINE: lambda: mlp_epoch(X, y, *next(it32), lr=LR, batch=BATCH),
        OURS: lambda: sgd_epoch(next(it_models), X, y, lr=LR, batch_size=BATCH),
        FLOOR: gemm_floor(X, W1_0, W2_0, update=False),
        FLOOR_UPDATE: gemm_floor(X, W1_0, W2_0, update=True),
    }

    print(f"one epoch, lr={LR}, B={BATCH}, in order (after one untimed warm-up round):")
    # Untimed warm-up: starts the BLAS threads, and lets glibc malloc raise its mmap threshold
    # past the textbook's (n, h) temporaries; until then each textbook epoch pays ~350k page
    # faults (seconds on this VM). The medians below are the textbook's warm, faster state.
    side_by_side(variants, 1)
    times = side_by_side(variants, args.reps)
    report(times, BASELINE)

    med = {key: statistics.median(ts) for key, ts in times.items()}
    print(
        f"  {OURS}: {med[OURS] / med[FLOOR]:.2f}x the GEMM floor, "
        f"{med[OURS] / med[FLOOR_UPDATE]:.2f}x the GEMM+update floor; "
        f"{BASELINE}: {med[BASELINE] / med[FLOOR]:.2f}x the GEMM floor"
    )
    # Same maths: the two float32 runs must end at (nearly) the same weights.
    diff = max(
        float(np.abs(models[0].params[p] - w).max())
        for p, w in zip(("W1", "W2"), w32[0], strict=True)
    )
    print(f"  check: max |W_sgd_epoch - W_textbook32| after one epoch = {diff:.1e}")


if __name__ == "__main__":
    main()
