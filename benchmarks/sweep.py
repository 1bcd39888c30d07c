"""Benchmark: a 27-job sweep end to end through ``softmax-lab train -m``, fused vs basic.

Run: ``python benchmarks/sweep.py [--reps 3] [--small] [--baseline PYTHON]``. The grid is
lr ∈ {0.05, 0.1, 0.2} × batch ∈ {50, 100, 200} × epochs ∈ {3, 5, 10} on Fashion-MNIST
(60k×784; random data of that shape when it is not installed). The variants (fused, the
default; fused-seq; basic: ``hydra/launcher=basic``) run as real CLI processes, alternated,
against one MLflow store created beforehand; each process writes its phase times
(``SOFTMAX_LAB_TIMINGS``), so the breakdown is measured, not guessed.

Printed, medians over repetitions:
- wall time of each variant and the ratio basic / fused (target ≥ 3×);
- the breakdown: start-up (process start until the first job's work begins: training, or
  opening the runs; and the exit), config composition, store, setup (fused jobs' Hydra dirs
  and run opening, apart from store writes; Hydra's own run_job, in basic sweeps, falls under
  other), data, training, logging, pictures, summary, other. A fused sweep trains its groups
  in child processes while the sweep process imports MLflow, opens the store and records the
  runs: its training is the children's wall time (first start to last end), which the sweep
  process's phases overlap; its timeline (training starts, store ready, training ends, runs
  closed, exit) is printed too;
- the fused harness overhead per job: wall − one-time start-up − the trainer's own compute,
  divided by the jobs (target ≤ 0.1 s), measured on a third variant, fused-seq
  (``hydra.launcher.prestart=false``), whose groups start training only once the store and
  parent run exist, so its start-up is a span of its own; also the same figure for the default,
  whose start-up (MLflow's import, the store) overlaps training and so counts as overhead. The
  compute is measured, interleaved with the sweeps: the same groups trained alone, each in a
  child process as the launcher runs them, nothing logged;
- with ``--baseline PYTHON`` (the interpreter of another installed version of softmax-lab, e.g.
  an older checkout's ``.venv/bin/python``): a fourth variant, that version's default fused
  sweep, alternated with the others, and the ratio of this version's wall time to its own;
- peak memory of the sweep: PSS summed over the sweep process and its children, sampled every
  0.1 s (shared pages split between the processes that map them), against the float32 data
  (target ≤ 1.5× data + 300 MB); also the RSS sum and the sweep process's own peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import train_argv

GRID = ("optim.lr=0.05,0.1,0.2", "optim.batch_size=50,100,200", "optim.epochs=3,5,10")
SMALL = ("optim.lr=0.05,0.2", "optim.batch_size=100", "optim.epochs=1,2")
VARIANTS = ("fused", "fused-seq", "basic", "ray")
PHASES = ("compose", "store", "setup", "data", "training", "logging", "pictures", "summary")
EXTRA = ("ray",)  # phases only some variants have: Ray's start and stop


def _dataset_args(work: Path) -> tuple[list[str], Any]:
    """Overrides selecting the data, and the data (a ``Dataset``)."""
    from softmax_lab.data.idx import write_idx
    from softmax_lab.data.sources import load_dataset
    from softmax_lab.errors import DatasetError

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
    """Wall time of the fused sweep's arithmetic alone: each batch size's group trained in a
    child process of its own (``FusedWorker``, one BLAS thread), as the fused launcher runs
    them, with nothing logged, drawn or written. The trainer's own compute, measured."""
    import itertools

    from softmax_lab.fusion.stacked import plan_fused
    from softmax_lab.fusion.worker import FusedWorker

    v = _grid_values(grid)
    pairs = list(itertools.product(v["optim.lr"], v["optim.epochs"]))
    plan = plan_fused([float(lr) for lr, _ in pairs], [int(e) for _, e in pairs])
    t0 = time.perf_counter()
    workers = [
        FusedWorker(d, plan, batch_size=int(b), shuffle=False, seed=0)
        for b in v["optim.batch_size"]
    ]
    for worker in workers:
        for _ in worker.events():
            pass
    return time.perf_counter() - t0


def _tree_memory(pid: int) -> tuple[float, float]:
    """(PSS, RSS) summed over ``pid`` and its descendants, in MB. PSS splits each shared page
    between the processes mapping it (the data a forked child shares with its parent counts
    once); the RSS sum counts it in every process."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree, grew = {pid}, True
    while grew:
        more = {p for p, pp in parents.items() if pp in tree} - tree
        tree |= more
        grew = bool(more)
    pss = rss = 0.0
    for p in tree:
        try:
            text = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                pss += int(line.split()[1]) / 1024
            elif line.startswith("Rss:"):
                rss += int(line.split()[1]) / 1024
    return pss, rss


def _ray_token(work: Path) -> dict[str, str]:
    """Ray's token for the local instances of the ray variant, kept in the benchmark's
    directory (Ray would otherwise write ``~/.ray/auth_token``)."""
    token = work / "ray-token"
    if not token.exists():
        import secrets

        token.write_text(secrets.token_hex(32))
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


def _run(
    variant: str,
    work: Path,
    uri: str,
    data_args: list[str],
    grid: tuple[str, ...],
    rep: int,
    python: str = sys.executable,
) -> dict[str, float]:
    """One sweep as a child process of ``python``; its wall time, phases, marks and peak
    memory."""
    timings = work / f"{variant}-{rep}.json"
    cmd = train_argv(
        *data_args,
        *grid,
        f"tracking.uri={uri}",
        f"tracking.experiment=bench-{variant}",
        f"hydra.sweep.dir={work / variant / str(rep)}",
        python=python,
    )
    if variant == "basic":
        cmd.append("hydra/launcher=basic")
    elif variant == "fused-seq":
        cmd.append("hydra.launcher.prestart=false")
    elif variant == "ray":  # a local Ray instance with this machine's cores
        cmd.append("hydra/launcher=ray")
    env = {**os.environ, "SOFTMAX_LAB_TIMINGS": str(timings), **_ray_token(work)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    peak = [0.0, 0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            pss, rss = _tree_memory(proc.pid)
            peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    err = proc.stderr.read() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{variant} sweep failed:\n{err[-3000:]}")
    record = json.loads(timings.read_text())
    phases = record["phases"]
    before = record["before_end"]
    out = {"wall": wall, "peak_rss_mb": usage.ru_maxrss / 1024}
    out["tree_pss_mb"], out["tree_rss_mb"] = peak
    out["outside_main"] = wall - before["main"]  # interpreter start-up and exit
    out.update({p: phases.get(p, 0.0) for p in (*PHASES, *EXTRA)})
    accounted = sum(out[p] for p in PHASES if p not in ("compose", "store"))
    out["other"] = before["first_job"] - accounted
    out["cpu_self"], out["cpu_children"] = record["cpu"]["self"], record["cpu"]["children"]
    at = {k: v - t0 for k, v in record["at"].items()}  # seconds after the process started
    # until the first job's work begins: training (groups started early) or the runs' opening
    out["startup"] = min(at.get("training_start", at["first_job"]), at["first_job"])
    out["startup"] += wall - at["dump"]  # and the exit
    if "training_start" in at:  # fused: the groups train in child processes
        out["t_training"], out["t_store"] = at["training_start"], at["first_job"]
        out["t_trained"], out["t_closed"] = at["training_done"], at["last_job_done"]
        out["training"] = at["training_done"] - at["training_start"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per variant (median)")
    parser.add_argument("--small", action="store_true", help="a 4-job grid, for a quick check")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated subset of {','.join(VARIANTS)} (fused is always run)",
    )
    parser.add_argument(
        "--baseline",
        metavar="PYTHON",
        help="also time the default sweep of the softmax-lab installed for this interpreter",
    )
    args = parser.parse_args()
    chosen = tuple(v for v in VARIANTS if v in {"fused", *args.variants.split(",")})
    variants = (*chosen, "baseline") if args.baseline else chosen
    grid = SMALL if args.small else GRID
    jobs = 1
    for axis in grid:
        jobs *= len(axis.split("=", 1)[1].split(","))

    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        work = Path(tmp)
        data_args, data = _dataset_args(work)
        data_bytes = data.X_train.nbytes + data.X_test.nbytes
        uri = f"sqlite:///{work / 'mlflow.db'}"
        from softmax_lab.tracking import store

        for variant in variants:  # the store exists before any timed sweep
            store.prepare_store(uri, f"bench-{variant}")
        runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        trainer: list[float] = []
        for rep in range(args.reps):
            order = list(variants)
            if args.baseline:  # baseline right before or after fused, alternately: a fair pair
                order.remove("baseline")
                order.insert(0 if rep % 2 else 1, "baseline")
            for variant in order:
                python = args.baseline if variant == "baseline" else sys.executable
                runs[variant].append(_run(variant, work, uri, data_args, grid, rep, python))
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
    for v in chosen:
        cells = [
            f"{'-':>10}" if v != "basic" and k == "other" else f"{med[v][k]:10.2f}" for k in keys
        ]
        print(f"  {v:<10}" + "".join(cells))
    f = med["fused"]
    print(
        "  (fused: training is the groups' wall time in their child processes, from the first "
        "one's start to the last one's end; the phases of the sweep process overlap it)"
    )
    print(
        f"  fused timeline: training starts at {f['t_training']:.2f} s, the store and parent "
        f"run are ready at {f['t_store']:.2f} s, training ends at {f['t_trained']:.2f} s, "
        f"every run is closed at {f['t_closed']:.2f} s, the process has exited at "
        f"{f['wall']:.2f} s"
    )
    for v in chosen:
        print(
            f"  CPU seconds {v}: sweep process {med[v]['cpu_self']:.2f}, its children "
            f"{med[v]['cpu_children']:.2f} (2 cores: at best half their sum in wall time)"
        )
    if "basic" in med:
        ratio = med["basic"]["wall"] / f["wall"]
        print(f"  basic / fused wall time: {ratio:.2f}x  (target >= 3x)")
    if "ray" in med:
        _report_ray(med["ray"], f, jobs, grid)
    if args.baseline:
        b = med["baseline"]
        pairs = [
            r["wall"] / s["wall"] for r, s in zip(runs["fused"], runs["baseline"], strict=True)
        ]
        print(
            f"  this version / baseline ({args.baseline}), the default fused sweep: "
            f"{f['wall']:.2f} s / {b['wall']:.2f} s = {f['wall'] / b['wall']:.3f}x of medians; "
            f"per repetition {', '.join(f'{p:.3f}' for p in pairs)} (median "
            f"{statistics.median(pairs):.3f}x; below 1: faster)"
        )
    compute = statistics.median(trainer)
    if "fused-seq" in med:
        _report_overhead(med["fused-seq"], compute, jobs)
    early = (f["wall"] - f["startup"] - compute) / jobs
    print(
        f"  the default (groups start before the store opens): wall minus the start-up before "
        f"training {f['startup']:.2f} s and the compute: {early:.3f} s per job, which counts "
        "MLflow's import and the store's opening as overhead, since they run during training"
    )
    data_mb = data_bytes / 2**20
    limit = 1.5 * data_mb + 300
    for v in chosen:
        pss, rss = med[v]["tree_pss_mb"], med[v]["tree_rss_mb"]
        print(
            f"  peak memory {v}: {pss:.0f} MB PSS for {data_mb:.0f} MB of float32 data = "
            f"{pss / data_mb:.2f}x  (target <= {limit:.0f} MB); summed over the sweep's "
            f"processes, sampled every 0.1 s; RSS summed {rss:.0f} MB (pages shared with "
            f"a forked child counted twice); the sweep process alone "
            f"{med[v]['peak_rss_mb']:.0f} MB peak RSS"
        )


def _report_ray(r: dict[str, float], f: dict[str, float], jobs: int, grid: tuple[str, ...]) -> None:
    """The ray variant against local fused: start-up, per-job overhead, per-unit cost."""
    units = len(_grid_values(grid)["optim.batch_size"])  # one fused group per batch size
    per_job = (r["wall"] - r["ray"] - f["wall"]) / jobs
    print(
        f"  ray (hydra/launcher=ray, a local Ray instance, 2 CPUs): wall {r['wall']:.2f} s "
        f"= {r['wall'] / f['wall']:.2f}x fused; Ray's start-up and shutdown {r['ray']:.2f} s "
        f"(ray.init + ray.shutdown, paid once per sweep); per-job overhead over local fused, "
        f"start-up aside: ({r['wall']:.2f} - {r['ray']:.2f} - {f['wall']:.2f}) / {jobs} = "
        f"{per_job:.3f} s; its {units} tasks' training span {r['training']:.2f} s, "
        f"{r['training'] / units:.2f} s per fused group of {jobs // units} jobs"
    )


def _report_overhead(q: dict[str, float], compute: float, jobs: int) -> None:
    """The fused harness overhead per job, on fused-seq."""
    overhead = (q["wall"] - q["startup"] - compute) / jobs
    print(
        f"  fused harness overhead per job: {overhead:.3f} s  (target <= 0.1 s), measured on "
        f"fused-seq (hydra.launcher.prestart=false: its groups start once the store and parent "
        f"run exist, so the one-time start-up is a separate span): wall {q['wall']:.2f} s "
        f"minus that start-up {q['startup']:.2f} s (interpreter, imports incl. MLflow, "
        f"composition, store, parent run; and the exit) and the trainer's own compute "
        f"{compute:.2f} s (the groups trained alone, each in its own process, in this "
        "invocation)"
    )


if __name__ == "__main__":
    main()
