"""Benchmark: a 27-job sweep end to end through ``softmax-lab train -m``, fused vs basic.

Run: ``python benchmarks/sweep.py [--reps 3] [--small]``. The grid is
lr ∈ {0.05, 0.1, 0.2} × batch ∈ {50, 100, 200} × epochs ∈ {3, 5, 10} on Fashion-MNIST
(60k×784; random data of that shape when it is not installed). Both variants run as real CLI
processes, alternated, against one MLflow store created beforehand; each process writes its
phase times (``SOFTMAX_LAB_TIMINGS``), so the breakdown is measured, not guessed.

Printed, medians over repetitions:
- wall time of each variant and the ratio basic / fused (target ≥ 3×);
- the breakdown: start-up (interpreter, imports, until the first job starts; and the exit), config
  composition, store, setup (fused jobs' Hydra dirs and run opening, apart from store writes;
  Hydra's own run_job, in basic sweeps, falls under other), data, training, logging, pictures,
  summary, other;
- the fused harness overhead per job: wall − start-up − data − the trainer's own compute,
  divided by the jobs (target ≤ 0.1 s). The compute is measured, interleaved with the sweeps:
  the same groups trained by ``train_fused`` alone, in threads as the launcher does, nothing
  logged; the figure from the phase timers (which count logging done in the training threads
  as if it had not overlapped) is printed too;
- peak RSS of the sweep process against the float32 data (target ≤ 1.5× data + 300 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GRID = ("optim.lr=0.05,0.1,0.2", "optim.batch_size=50,100,200", "optim.epochs=3,5,10")
SMALL = ("optim.lr=0.05,0.2", "optim.batch_size=100", "optim.epochs=1,2")
PHASES = ("compose", "store", "setup", "data", "training", "logging", "pictures", "summary")


def _dataset_args(work: Path) -> tuple[list[str], Any]:
    """Overrides selecting the data, and the data (a ``Dataset``)."""
    from softmax_lab.datasets import DatasetError, load_dataset
    from softmax_lab.idx import write_idx

    try:
        d = load_dataset("fashion_mnist", download=False)  # also warms the parsed cache
        args = ["dataset=fashion_mnist"]
    except DatasetError:
        import numpy as np

        rng = np.random.default_rng(0)
        directory = work / "random-idx"
        for name, shape in (
            ("train-images-idx3-ubyte", (60000, 28, 28)),
            ("t10k-images-idx3-ubyte", (10000, 28, 28)),
        ):
            write_idx(directory / name, rng.integers(0, 256, shape, dtype=np.uint8))
        for name, m in (("train-labels-idx1-ubyte", 60000), ("t10k-labels-idx1-ubyte", 10000)):
            write_idx(directory / name, rng.integers(0, 10, m, dtype=np.uint8))
        d = load_dataset("idx", path=directory)
        args = ["dataset=idx", f"dataset.path={directory}"]
    return args, d


def _grid_values(grid: tuple[str, ...]) -> dict[str, list[str]]:
    return {axis.split("=", 1)[0]: axis.split("=", 1)[1].split(",") for axis in grid}


def _trainer_only(d: Any, grid: tuple[str, ...]) -> float:
    """Wall time of the fused sweep's arithmetic alone: each batch size's group trained by
    ``train_fused`` in its own thread, one BLAS thread, as the fused launcher runs them, with
    nothing logged, drawn or written. The trainer's own compute, measured."""
    import itertools
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from softmax_lab.fused import plan_fused, train_fused

    v = _grid_values(grid)
    pairs = list(itertools.product(v["optim.lr"], v["optim.epochs"]))
    plan = plan_fused([float(lr) for lr, _ in pairs], [int(e) for _, e in pairs])

    def group(batch: str) -> object:
        return train_fused(
            d.X_train, d.y_train, d.X_test, d.y_test, plan, batch_size=int(batch), n_classes=10
        )

    t0 = time.perf_counter()
    with (
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(len(v["optim.batch_size"])) as pool,
    ):
        list(pool.map(group, v["optim.batch_size"]))
    return time.perf_counter() - t0


def _run(
    variant: str, work: Path, uri: str, data_args: list[str], grid: tuple[str, ...], rep: int
) -> dict[str, float]:
    """One sweep as a child process; its wall time, phases and peak RSS."""
    timings = work / f"{variant}-{rep}.json"
    cmd = [
        sys.executable,
        "-m",
        "softmax_lab",
        "train",
        "-m",
        *data_args,
        *grid,
        f"tracking.uri={uri}",
        f"tracking.experiment=bench-{variant}",
        f"hydra.sweep.dir={work / variant / str(rep)}",
    ]
    if variant == "basic":
        cmd.append("hydra/launcher=basic")
    env = {**os.environ, "SOFTMAX_LAB_TIMINGS": str(timings)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{variant} sweep failed:\n{err[-3000:]}")
    record = json.loads(timings.read_text())
    phases = record["phases"]
    before = record["before_end"]
    out = {"wall": wall, "peak_rss_mb": usage.ru_maxrss / 1024}
    out["startup"] = wall - before["first_job"]  # process start to first job, and exit
    out["outside_main"] = wall - before["main"]  # interpreter start-up and exit
    out.update({p: phases.get(p, 0.0) for p in PHASES})
    out["compose"] = phases.get("compose", 0.0)
    accounted = sum(out[p] for p in PHASES if p not in ("compose", "store"))
    out["other"] = before["first_job"] - accounted
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per variant (median)")
    parser.add_argument("--small", action="store_true", help="a 4-job grid, for a quick check")
    args = parser.parse_args()
    grid = SMALL if args.small else GRID
    jobs = 1
    for axis in grid:
        jobs *= len(axis.split("=", 1)[1].split(","))

    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        work = Path(tmp)
        data_args, data = _dataset_args(work)
        data_bytes = data.X_train.nbytes + data.X_test.nbytes
        uri = f"sqlite:///{work / 'mlflow.db'}"
        from softmax_lab import tracking

        for variant in ("fused", "basic"):  # the store exists before any timed sweep
            tracking.prepare_store(uri, f"bench-{variant}")
        runs: dict[str, list[dict[str, float]]] = {"fused": [], "basic": []}
        trainer: list[float] = []
        for rep in range(args.reps):
            for variant in ("fused", "basic"):
                runs[variant].append(_run(variant, work, uri, data_args, grid, rep))
                print(
                    f"  rep {rep + 1}/{args.reps} {variant}: {runs[variant][-1]['wall']:.1f} s",
                    flush=True,
                )
            trainer.append(_trainer_only(data, grid))
            print(f"  rep {rep + 1}/{args.reps} trainer only: {trainer[-1]:.1f} s", flush=True)

    med = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in runs.items()}
    print(f"\n{jobs}-job sweep ({' '.join(grid)}), {' '.join(data_args)}, medians of {args.reps}:")
    keys = [
        "wall",
        "startup",
        "compose",
        "store",
        "setup",
        "data",
        "training",
        "logging",
        "pictures",
        "summary",
        "other",
    ]
    print(f"  {'seconds':<10}" + "".join(f"{k:>10}" for k in keys))
    for v in ("fused", "basic"):
        print(f"  {v:<10}" + "".join(f"{med[v][k]:10.2f}" for k in keys))
    ratio = med["basic"]["wall"] / med["fused"]["wall"]
    print(f"  basic / fused wall time: {ratio:.2f}x  (target >= 3x)")
    f = med["fused"]
    compute = statistics.median(trainer)
    overhead = (f["wall"] - f["startup"] - f["data"] - compute) / jobs
    print(
        f"  fused harness overhead per job: {overhead:.3f} s  (target <= 0.1 s): wall minus "
        f"start-up {f['startup']:.2f} s, data {f['data']:.2f} s and the trainer's own compute "
        f"{compute:.2f} s (the groups trained alone, side by side, in this process)"
    )
    by_phase = (f["wall"] - f["startup"] - f["data"] - f["training"]) / jobs
    print(
        f"  by the phase timers instead: {by_phase:.3f} s per job (their training excludes "
        "the logging done in the training threads, as if it had not overlapped)"
    )
    print(
        "  start-up counts from process start to the first job, plus the interpreter's exit: "
        + ", ".join(f"{v} {med[v]['outside_main']:.2f} s outside main()" for v in med)
    )
    data_mb = data_bytes / 2**20
    limit = 1.5 * data_mb + 300
    for v in ("fused", "basic"):
        print(
            f"  peak RSS {v}: {med[v]['peak_rss_mb']:.0f} MB for {data_mb:.0f} MB of float32 "
            f"data = {med[v]['peak_rss_mb'] / data_mb:.2f}x  (target <= {limit:.0f} MB)"
        )


if __name__ == "__main__":
    main()
