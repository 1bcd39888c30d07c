"""Load: several sweeps started at the same moment into one store; what each costs, what is lost.

Run: ``python benchmarks/load.py [--sweeps 4] [--jobs 27] [--epochs 2] [--stores sqlite,server]
[--no-kill]``. For each store, two loads, each into a fresh store:

- ``all``: ``--sweeps`` sweeps of ``--jobs`` jobs each (softmax regression on mnist_5k,
  ``hydra/launcher=basic``: one run after another, ``--epochs`` epochs; the sweeps differ in
  ``tracking.experiment``, so none stops at another's sweep lock) started at once as real
  ``softmax-lab train -m`` processes;
- ``kill``: the same, but sweep 0 is killed with SIGKILL (its whole process group) once half of
  its jobs are FINISHED and the next one's run is open, and resumed with ``resume=true`` as
  soon as it is dead.

Stores: ``sqlite``, a SQLite file that does not exist when the sweeps start (all of them create
it: the schema migration race); ``server``, a team store started here with ``softmax-lab server
start`` in a temporary directory (PostgreSQL + ``mlflow server`` with basic auth, 2 workers;
needs Debian's ``postgresql``) and stopped afterwards.

Printed per load:
- jobs/s: the jobs of all sweeps divided by the wall time from their start to the last one's
  end (the resume's, for ``kill``);
- recording per run, p50 and p95: a FINISHED job run's time in the store (its end_time minus its
  start_time) minus its training (the sum of its ``epoch_seconds``): what recording the run costs
  (creating it, params, metric points, θ and three pictures, ending it), waits for the store
  included;
- lost: jobs without exactly one FINISHED run holding ``epochs`` points of each of the four
  metrics and ``params/theta.npy``; RUNNING: runs left RUNNING (must be 0); KILLED: the killed
  sweep's leftovers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import train_argv

METRICS = ("train/loss", "train/error", "test/loss", "test/error")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sweep_argv(work: Path, uri: str, index: int, jobs: int, epochs: int) -> list[str]:
    lrs = ",".join(f"{0.01 * (j + 1):.2f}" for j in range(jobs))
    return train_argv(
        f"tracking.uri={uri}",
        f"tracking.experiment=load-{index}",
        f"hydra.sweep.dir={work / f'sweep-{index}'}",
        "hydra/launcher=basic",
        f"optim.epochs={epochs}",
        f"optim.lr={lrs}",
    )


def start(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def job_counts(uri: str, experiment: str) -> tuple[int, int]:
    """(FINISHED, RUNNING) job runs of ``experiment`` so far."""
    from mlflow import MlflowClient

    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return 0, 0  # not made yet; MlflowClient would make it, racing the sweeps
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return 0, 0
    runs = client.search_runs([found.experiment_id], "tags.`sl.role` = 'job'")
    statuses = [r.info.status for r in runs]
    return statuses.count("FINISHED"), statuses.count("RUNNING")


def run_load(
    work: Path, uri: str, env: dict[str, str], sweeps: int, jobs: int, epochs: int, kill: bool
) -> float:
    """Start the sweeps at once (killing and resuming sweep 0 with ``kill``); the wall time."""
    argvs = [sweep_argv(work, uri, i, jobs, epochs) for i in range(sweeps)]
    t0 = time.perf_counter()
    procs = [start(argv, work, env) for argv in argvs]
    if kill:
        # half of its jobs FINISHED and the next one's run open: it is left RUNNING
        while True:
            finished, running = job_counts(uri, "load-0")
            if finished >= jobs // 2 and running:
                break
            if procs[0].poll() is not None:
                raise RuntimeError("sweep 0 ended before it could be killed")
            time.sleep(0.05)
        os.killpg(procs[0].pid, signal.SIGKILL)
        procs[0].wait()
        procs.append(start([*argvs[0], "resume=true"], work, env))
    for i, proc in enumerate(procs):
        _, err = proc.communicate()
        if proc.returncode not in (0, -signal.SIGKILL) or (kill and i == 0) != (
            proc.returncode == -signal.SIGKILL
        ):
            raise RuntimeError(f"sweep {i} exited {proc.returncode}: {err.decode()[-2000:]}")
    return time.perf_counter() - t0


def count(uri: str, sweeps: int, jobs: int, epochs: int) -> tuple[list[float], int, int, int]:
    """(recording seconds of each FINISHED job run, lost jobs, RUNNING runs, KILLED runs)."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    recording: list[float] = []
    lost = running = killed = 0
    for index in range(sweeps):
        found = client.get_experiment_by_name(f"load-{index}")
        runs = client.search_runs([found.experiment_id], max_results=5000) if found else []
        complete: dict[str, int] = {}
        for run in runs:
            running += run.info.status == "RUNNING"
            killed += run.info.status == "KILLED"
            if run.data.tags.get("sl.role") != "job" or run.info.status != "FINISHED":
                continue
            run_id = run.info.run_id
            histories = {
                k: client.get_metric_history(run_id, k) for k in (*METRICS, "epoch_seconds")
            }
            theta = [a.path for a in client.list_artifacts(run_id, "params")]
            ok = all(len(histories[k]) == epochs for k in METRICS) and "params/theta.npy" in theta
            key = run.data.tags["sl.config_hash"]
            complete[key] = complete.get(key, 0) + (1 if ok else 2)  # incomplete: never "one"
            train = sum(p.value for p in histories["epoch_seconds"])
            recording.append((run.info.end_time - run.info.start_time) / 1000 - train)
        lost += jobs - sum(1 for n in complete.values() if n == 1)
    return recording, lost, running, killed


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if values else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweeps", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=27)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--stores", default="sqlite,server")
    ap.add_argument("--no-kill", action="store_true", help="skip the load with a killed sweep")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    total = args.sweeps * args.jobs
    print(
        f"{args.sweeps} sweeps x {args.jobs} jobs x {args.epochs} epochs (mnist_5k, basic "
        f"launcher) started at once; {os.cpu_count()} CPUs"
    )
    print(
        f"{'store':<8}{'load':<6}{'wall s':>8}{'jobs/s':>8}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'lost':>6}{'RUNNING':>9}{'KILLED':>8}"
    )
    for store in args.stores.split(","):
        for kill in (False, True)[: 1 if args.no_kill else 2]:
            parent = Path(tempfile.mkdtemp(prefix="softmax-lab-load-", dir="/tmp"))
            os.chmod(parent, 0o711)  # the team store's PostgreSQL user must reach its directory
            load_env = dict(env)
            team = parent / "team"
            if store == "sqlite":
                uri = f"sqlite:///{parent / 'store' / 'mlflow.db'}"  # made by the sweeps
            else:
                port = free_port()
                start_args = [
                    "server",
                    "start",
                    "--dir",
                    str(team),
                    "--port",
                    str(port),
                    "--pg-port",
                    str(free_port()),
                ]
                subprocess.run(
                    [sys.executable, "-m", "softmax_lab", *start_args],
                    cwd=parent,
                    env=env,
                    check=True,
                    capture_output=True,
                )
                admin = (team / "admin.env").read_text().splitlines()
                load_env.update(line.split("=", 1) for line in admin if "=" in line)
                os.environ.update(line.split("=", 1) for line in admin if "=" in line)
                uri = f"http://127.0.0.1:{port}"
            try:
                wall = run_load(parent, uri, load_env, args.sweeps, args.jobs, args.epochs, kill)
                recording, lost, running, killed = count(uri, args.sweeps, args.jobs, args.epochs)
            finally:
                if store != "sqlite":  # then its directory can go
                    subprocess.run(
                        [sys.executable, "-m", "softmax_lab", "server", "stop", "--dir", str(team)],
                        cwd=parent,
                        env=env,
                        check=False,
                        capture_output=True,
                    )
                shutil.rmtree(parent, ignore_errors=True)
            print(
                f"{store:<8}{'kill' if kill else 'all':<6}{wall:8.1f}{total / wall:8.2f}"
                f"{pct(recording, 50) * 1e3:8.0f}{pct(recording, 95) * 1e3:8.0f}"
                f"{lost:6d}{running:9d}{killed:8d}",
                flush=True,
            )


if __name__ == "__main__":
    main()
