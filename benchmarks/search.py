"""Benchmark: an Optuna search (TPE + median pruning) against the 27-job grid, on Fashion-MNIST
with a validation split (issue 15).

Run: ``python benchmarks/search.py [--seeds 5] [--trials 30] [--small] [--set OVERRIDE…]``
(``--set``: more overrides for the search, e.g. another pruner). Needs Fashion-MNIST
(``apt-get install dataset-fashion-mnist``): 50,000 training images, 10,000 held out for
validation (``dataset.val_size=10000``), the test set unused.

- The grid: ``benchmarks/sweep.py``'s 27 jobs, lr ∈ {0.05, 0.1, 0.2} × B ∈ {50, 100, 200} ×
  E ∈ {3, 5, 10}, fused, as ``softmax-lab train -m``. Its cost is its job-epochs, the sum of
  its jobs' epochs (162): a grid only knows its best once every job has run.
- The search: ``+experiment=search_lr_batch`` (lr log-uniform in [0.001, 1], B ∈ {20, 50, 100,
  200, 500}, E ∈ 1..20, batches of 3 trials, median pruning) with sampler seeds 0..N−1 and
  ``--trials`` trials each. Its cost to reach the grid: the job-epochs its trials trained, in
  trial order, up to and including the first COMPLETE trial whose final validation error is
  within 0.2 percentage points of the grid's best (a pruned trial counts the epochs it
  trained).
- Wall time: each search beside a grid run, alternated (grid, search seed 0, grid, search seed
  1, …), every process with a store of its own; medians.

Prints one line per seed and the medians; target: the search reaches the grid's best (within
0.2 points) with at most half the grid's job-epochs, median over seeds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import train_argv

GRID = ("optim.lr=0.05,0.1,0.2", "optim.batch_size=50,100,200", "optim.epochs=3,5,10")
SMALL_GRID = ("optim.lr=0.05,0.2", "optim.batch_size=100", "optim.epochs=1,2")
VAL = ("dataset=fashion_mnist", "dataset.val_size=10000")
WITHIN = 0.002  # 0.2 percentage points of validation error


def _run(args: list[str], work: Path, name: str) -> tuple[str, float]:
    """One ``softmax-lab train -m`` process with a store of its own: (its URI, wall time)."""
    uri = f"sqlite:///{work / name / 'mlflow.db'}"
    (work / name).mkdir(parents=True)
    cmd = train_argv(*args, f"tracking.uri={uri}", f"hydra.sweep.dir={work / name / 'multirun'}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work / name, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return uri, wall


def _jobs(uri: str, experiment: str) -> list[dict[str, Any]]:
    """Each job of the only sweep in the store: trial number, state, epochs trained, final
    validation error."""
    from softmax_lab.tracking import reading

    frame = reading.runs_frame(uri, experiment)
    jobs = []
    for _, r in frame.iterrows():
        history = reading.metric_history(uri, r["run_id"], "val/error")
        number = r.get("tags.sl.trial_number")
        jobs.append(
            {
                "number": int(number) if isinstance(number, str) else -1,
                "state": r.get("tags.sl.trial_state") or r["status"],
                "epochs": len(history),
                "val_error": history[-1][1] if history else float("nan"),
            }
        )
    return sorted(jobs, key=lambda j: j["number"])


def _to_reach(trials: list[dict[str, Any]], target: float) -> tuple[int | None, int]:
    """Job-epochs trained until the first COMPLETE trial within ``target`` (None: never), and
    the job-epochs of the whole search."""
    spent = 0
    reached = None
    for t in trials:
        spent += t["epochs"]
        if reached is None and t["state"] == "COMPLETE" and t["val_error"] <= target:
            reached = spent
    return reached, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--small", action="store_true", help="a 4-job grid, 6 trials: a check")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="OVERRIDE",
        help="more overrides for the search, e.g. hydra/sweeper/pruner=hyperband",
    )
    opts = parser.parse_args()
    from softmax_lab.data.sources import load_dataset
    from softmax_lab.errors import DatasetError

    try:
        load_dataset("fashion_mnist", download=False, val_size=10000)  # warms the parsed cache
    except DatasetError as err:
        raise SystemExit(
            f"needs Fashion-MNIST (apt-get install dataset-fashion-mnist): {err}"
        ) from err
    grid = SMALL_GRID if opts.small else GRID
    trials = 6 if opts.small else opts.trials
    search = [
        "+experiment=search_lr_batch",
        f"hydra.sweeper.n_trials={trials}",
        "tracking.experiment=search",
        *opts.set,
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        work = Path(tmp)
        grid_walls, grid_jobs = [], []
        for seed in range(opts.seeds):
            uri, wall = _run([*VAL, *grid, "tracking.experiment=grid"], work, f"grid-{seed}")
            grid_walls.append(wall)
            grid_jobs = _jobs(uri, "grid")
            s_uri, s_wall = _run(
                [*search, f"hydra.sweeper.sampler.seed={seed}"], work, f"search-{seed}"
            )
            rows.append((seed, _jobs(s_uri, "search"), s_wall))
            print(f"seed {seed}: grid {wall:.1f} s, search {s_wall:.1f} s", flush=True)
    best = min(j["val_error"] for j in grid_jobs)
    grid_cost = sum(j["epochs"] for j in grid_jobs)
    print(
        f"\ngrid: {len(grid_jobs)} jobs, {grid_cost} job-epochs, best val/error {best:.4f}; "
        f"target: a COMPLETE trial with val/error <= {best + WITHIN:.4f}"
    )
    print(
        f"{'seed':>4} {'trials':>6} {'complete':>8} {'pruned':>6} {'failed':>6} "
        f"{'best val/err':>12} {'job-epochs to reach':>19} {'ratio':>6} {'job-epochs all':>14} "
        f"{'wall s':>7}"
    )
    reach_ratios: list[float] = []
    for seed, jobs, wall in rows:
        reached, spent = _to_reach(jobs, best + WITHIN)
        count = {s: sum(j["state"] == s for j in jobs) for s in ("COMPLETE", "PRUNED", "FAIL")}
        complete = [j["val_error"] for j in jobs if j["state"] == "COMPLETE"]
        ratio = (reached if reached is not None else float("inf")) / grid_cost
        reach_ratios.append(ratio)
        print(
            f"{seed:>4} {len(jobs):>6} {count['COMPLETE']:>8} {count['PRUNED']:>6} "
            f"{count['FAIL']:>6} {min(complete, default=float('nan')):>12.4f} "
            f"{reached if reached is not None else 'not reached':>19} {ratio:>6.2f} "
            f"{spent:>14} {wall:>7.1f}"
        )
    med = statistics.median(reach_ratios)
    search_walls = [wall for _, _, wall in rows]
    print(
        f"\nmedian over {len(rows)} seeds: job-epochs to reach the grid's best (within "
        f"{WITHIN * 100:.1f} points) / grid's job-epochs = {med:.2f} (target <= 0.5: "
        f"{'met' if med <= 0.5 else 'NOT met'})"
    )
    print(
        f"wall time, side by side: grid median {statistics.median(grid_walls):.1f} s, search "
        f"({trials} trials) median {statistics.median(search_walls):.1f} s, ratio "
        f"{statistics.median(search_walls) / statistics.median(grid_walls):.2f}"
    )


if __name__ == "__main__":
    main()
