"""Several sweeps started at once into one store, and what the store holds afterwards."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mlflow import MlflowClient

from helpers.cli import METRICS
from helpers.servers import clean_env


def sweep_argv(work: Path, digits_dir: Path, uri: str, index: int, jobs: int) -> list[str]:
    """A sweep of ``jobs`` jobs (2 epochs each, one by one), experiment ``load-<index>``: the
    sweeps of one load differ in their experiment, so none stops at another's lock."""
    lrs = ",".join(f"{0.05 * (j + 1):.2f}" for j in range(jobs))
    return [
        sys.executable,
        "-m",
        "softmax_lab",
        "train",
        "-m",
        "dataset=idx",
        f"dataset.path={digits_dir}",
        f"tracking.uri={uri}",
        f"tracking.experiment=load-{index}",
        f"hydra.sweep.dir={work / f'sweep-{index}'}",
        "hydra/launcher=basic",
        "optim.epochs=2",
        f"optim.lr={lrs}",
    ]


def start_sweeps(
    argvs: list[list[str]], cwd: Path, env: dict[str, str] | None = None
) -> list[subprocess.Popen[str]]:
    """Start every sweep at once, each in its own process group (so it can be killed whole)."""
    return [
        subprocess.Popen(
            argv,
            cwd=cwd,
            env={**clean_env(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for argv in argvs
    ]


def wait_all(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    """Each process's exit code, stdout and stderr, once all have ended."""
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        done.append((proc.returncode, out, err))
    return done


@dataclass
class Audit:
    """What one experiment of a load holds."""

    finished: Counter[str] = field(default_factory=Counter)  # config hash → FINISHED job runs
    statuses: Counter[str] = field(default_factory=Counter)  # every run, parents too
    incomplete: list[str] = field(default_factory=list)  # FINISHED jobs missing points or θ


def audit(client: MlflowClient, experiment: str, epochs: int) -> Audit:
    """Count ``experiment``'s runs by status, its FINISHED jobs by config, and the FINISHED jobs
    without ``epochs`` points of each metric or without ``params/theta.npy``."""
    found = client.get_experiment_by_name(experiment)
    assert found is not None, experiment
    result = Audit()
    for run in client.search_runs([found.experiment_id], max_results=1000):
        result.statuses[run.info.status] += 1
        tags = run.data.tags
        if tags.get("sl.role") != "job" or run.info.status != "FINISHED":
            continue
        result.finished[tags["sl.config_hash"]] += 1
        run_id = run.info.run_id
        points = [len(client.get_metric_history(run_id, key)) for key in METRICS]
        theta = [a.path for a in client.list_artifacts(run_id, "params")]
        if points != [epochs] * len(METRICS) or "params/theta.npy" not in theta:
            result.incomplete.append(run_id)
    return result
