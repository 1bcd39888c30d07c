"""``hydra/launcher=ray`` against a real Ray cluster started here on 127.0.0.1 (2 CPUs, token
authentication), stopped when the module is done: the same numbers as a local fused sweep,
a worker killed mid-task, a cancelled sweep, a node whose data differ."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import METRICS, cli
from helpers.ray_cluster import RayCluster, ray_head
from helpers.servers import clean_env, free_port
from helpers.team_store import running_team_store, signed_in

from softmax_lab.data.sources import load_dataset
from softmax_lab.tracking import reading

pytestmark = pytest.mark.slow

# 12 jobs: 6 of softmax regression (one fused group: 3 step sizes side by side) and 6 of the
# two-layer net (each alone): 7 Ray tasks on 2 CPUs
MIXED = ("model=softmax,mlp", "model.hidden_dim=16", "optim.lr=0.05,0.2,0.5", "optim.epochs=2,3")
# one fused group that trains for a few seconds: time to kill its worker, or the sweep
LONG = ("optim.lr=0.1,0.2", "optim.epochs=300", "optim.batch_size=10")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """A Ray head node whose ``$HOME`` holds its own (different) ``digits`` data set."""
    directory = tmp_path_factory.mktemp("ray")
    with ray_head(directory, home=directory / "home") as head:
        yield head


def _sweep(
    tmp: Path, data: str, *extra: str, cluster: RayCluster | None, check: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    launcher = (
        ["hydra/launcher=ray", f"hydra.launcher.address={cluster.address}"] if cluster else []
    )
    return cli(
        "train",
        "-m",
        "dataset=idx",
        f"dataset.path={data}",
        f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}",
        "tracking.experiment=r",
        f"hydra.sweep.dir={tmp / 'multirun'}",
        *launcher,
        *extra,
        cwd=tmp,
        check=check,
        env={**(cluster.env if cluster else {}), **env},
    )


def _runs(tmp: Path) -> dict[tuple[str, str, str], dict]:
    frame = reading.runs_frame(f"sqlite:///{tmp / 'mlflow.db'}", "r")
    runs: dict[tuple[str, str, str], dict] = {}
    for _, row in frame.iterrows():
        key = (row["params.model.name"], row["params.optim.lr"], row["params.optim.epochs"])
        assert key not in runs, f"two runs for one job: {key}"
        runs[key] = row.to_dict()
    return runs


def _history(tmp: Path, run_id: str, metric: str) -> list[tuple[int, float]]:
    return reading.metric_history(f"sqlite:///{tmp / 'mlflow.db'}", run_id, metric)


def test_ray_sweep_equals_the_local_fused_sweep_bit_for_bit(
    tmp_path: Path, digits_dir: Path, cluster: RayCluster
) -> None:
    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
    local_dir.mkdir()
    ray_dir.mkdir()
    _sweep(local_dir, str(digits_dir), *MIXED, cluster=None)
    out = _sweep(ray_dir, str(digits_dir), *MIXED, cluster=cluster).stdout
    assert out.count("[fused group") == 1 and out.count("[ray] Ray task of") == 7
    local, ray = _runs(local_dir), _runs(ray_dir)
    assert local.keys() == ray.keys() and len(ray) == 12
    for key, r in ray.items():
        lo = local[key]
        assert r["status"] == lo["status"] == "FINISHED", key
        for metric in METRICS:  # every epoch's value, exactly
            assert _history(ray_dir, r["run_id"], metric) == _history(
                local_dir, lo["run_id"], metric
            ), (key, metric)
        hashes = sorted(k for k in r if k.startswith("tags.sl.sha256.") and r[k] == r[k])
        assert hashes == sorted(k for k in lo if k.startswith("tags.sl.sha256.") and lo[k] == lo[k])
        assert hashes and all(r[k] == lo[k] for k in hashes), key  # θ (W1, W2) bit for bit
        assert r["tags.sl.config_hash"] == lo["tags.sl.config_hash"]
        assert len(r["tags.sl.ray_node"]) == 56 and len(r["tags.sl.ray_task_id"]) > 8
        if key[0] == "softmax":  # the same group, the same plan: the id aside, the same tag
            assert r["tags.sl.fused_group"].split()[1:] == lo["tags.sl.fused_group"].split()[1:]
        else:
            assert r.get("tags.sl.fused") != "true"
        num = str(r["tags.sl.hydra_job_num"])  # the same grid: the same job numbers
        assert num == str(lo["tags.sl.hydra_job_num"])
        plots = sorted(os.listdir(ray_dir / "multirun" / num / "plots"))
        assert plots == sorted(os.listdir(local_dir / "multirun" / num / "plots")) and plots


@pytest.mark.parametrize("retries", [1, 0])
def test_a_worker_killed_mid_task_is_retried_or_fails_its_jobs(
    tmp_path: Path, digits_dir: Path, cluster: RayCluster, retries: int
) -> None:
    with _start(tmp_path, digits_dir, cluster, f"hydra.launcher.max_retries={retries}") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("[ray] "):
                time.sleep(1.0)  # it is training by now
                os.kill(_pid(line), signal.SIGKILL)  # raises if the task's process is gone
                break
        out = proc.stdout.read()
        code = proc.wait(timeout=600)
    err = (tmp_path / "stderr").read_text()
    runs = _runs(tmp_path)
    assert len(runs) == 2  # never two runs for one job
    if retries:
        assert code == 0, out + err
        for key, run in runs.items():
            assert run["status"] == "FINISHED"
            steps = [s for s, _ in _history(tmp_path, run["run_id"], "test/error")]
            assert steps == list(range(1, 301)), key  # no epoch twice, none missing
    else:
        assert code == 1, out + err
        for run in runs.values():
            assert run["status"] == "FAILED"
            assert "worker process died" in run["tags.sl.failure_reason"]


def test_a_cancelled_ray_sweep_kills_its_tasks_and_closes_its_runs(
    tmp_path: Path, digits_dir: Path, cluster: RayCluster
) -> None:
    with _start(tmp_path, digits_dir, cluster) as proc:
        assert proc.stdout is not None
        pid = next(_pid(line) for line in proc.stdout if line.startswith("[ray] "))
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    assert proc.returncode == 130, (tmp_path / "stderr").read_text()
    runs = _runs(tmp_path)
    assert len(runs) == 2 and {r["status"] for r in runs.values()} == {"KILLED"}
    deadline = time.monotonic() + 30  # the task's worker process is ended, not left training
    while _alive(pid):
        assert time.monotonic() < deadline, f"Ray worker {pid} still runs the cancelled task"
        time.sleep(0.2)
    # the same command again, resumed: its killed jobs run again, under the same sweep
    resumed = _sweep(tmp_path, str(digits_dir), *LONG, "resume=true", cluster=cluster)
    assert "resume: 0 of 2 jobs skipped" in resumed.stdout, resumed.stdout
    frame = reading.runs_frame(f"sqlite:///{tmp_path / 'mlflow.db'}", "r")
    assert sorted(frame["status"]) == ["FINISHED", "FINISHED", "KILLED", "KILLED"]
    assert frame["tags.sl.sweep_id"].nunique() == 1


def _start(tmp: Path, digits_dir: Path, cluster: RayCluster, *extra: str) -> subprocess.Popen[str]:
    """A Ray sweep of ``LONG`` as a process whose output the test reads as it comes."""
    args = [
        sys.executable,
        "-m",
        "softmax_lab",
        "train",
        "-m",
        "dataset=idx",
        f"dataset.path={digits_dir}",
        f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}",
        "tracking.experiment=r",
        f"hydra.sweep.dir={tmp / 'multirun'}",
        "hydra/launcher=ray",
        f"hydra.launcher.address={cluster.address}",
        *LONG,
        *extra,
    ]
    with (tmp / "stderr").open("w") as err:
        return subprocess.Popen(
            args,
            cwd=tmp,
            env={**clean_env(), **cluster.env},
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def _pid(line: str) -> int:
    """The process of a Ray task, from its ``[ray] …, pid N, task …`` line."""
    return int(line.split(", pid ")[1].split(",")[0])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_node_whose_data_differ_fails_its_jobs_naming_both_fingerprints(
    tmp_path: Path, digits_dir: Path, cluster: RayCluster, write_idx_set
) -> None:
    # the sweep's machine and the Ray node both have ~/digits, with different contents
    home = tmp_path / "home"
    shutil.copytree(digits_dir, home / "digits")
    node_home = Path(cluster.log).parent / "home"
    write_idx_set(node_home / "digits", seed=7)
    proc = _sweep(
        tmp_path,
        "'~/digits'",
        "optim.lr=0.1,0.2",
        "optim.epochs=2",
        cluster=cluster,
        check=False,
        HOME=str(home),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    ours = load_dataset("idx", path=home / "digits").fingerprint
    theirs = load_dataset("idx", path=node_home / "digits").fingerprint
    runs = _runs(tmp_path)
    assert len(runs) == 2
    for run in runs.values():
        reason = run["tags.sl.failure_reason"]
        assert run["status"] == "FAILED"
        assert "FingerprintMismatchError" in reason and "Ray node" in reason
        assert ours[:16] in reason and theirs[:16] in reason


def test_a_cluster_address_where_nothing_listens_stops_the_sweep_before_anything_is_made(
    tmp_path: Path, digits_dir: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    proc = _sweep(
        tmp_path,
        str(digits_dir),
        "hydra/launcher=ray",
        f"hydra.launcher.address={address}",
        "optim.lr=0.1,0.2",
        cluster=None,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"no Ray cluster answers at {address}" in proc.stderr
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "mlflow.db").exists()


def test_without_an_address_the_sweep_starts_and_stops_its_own_ray(
    tmp_path: Path, digits_dir: Path
) -> None:
    token = tmp_path / "ray-token"  # Ray would otherwise write ~/.ray/auth_token
    token.write_text("0123456789abcdef" * 4)
    out = _sweep(
        tmp_path,
        str(digits_dir),
        "hydra/launcher=ray",
        "model=softmax,mlp",
        "model.hidden_dim=8",
        "optim.lr=0.1,0.2",
        "optim.epochs=1",
        cluster=None,
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token),
    ).stdout
    assert out.count("[ray] Ray task of") == 3  # one fused group, two mlp jobs alone
    runs = _runs(tmp_path)
    assert len(runs) == 4 and {r["status"] for r in runs.values()} == {"FINISHED"}
    nodes = {r["tags.sl.ray_node"] for r in runs.values()}
    assert len(nodes) == 1 and len(nodes.pop()) == 56  # the one node it started


def test_a_ray_sweep_into_a_team_store_records_as_into_sqlite(
    tmp_path: Path, digits_dir: Path, cluster: RayCluster
) -> None:
    """An ``http://`` store (a real team store: PostgreSQL, mlflow server, basic auth) under the
    Ray launcher: the sweep process is the one writer, as with SQLite."""
    from mlflow import MlflowClient

    with running_team_store() as team:
        args = [
            "train",
            "-m",
            "dataset=idx",
            f"dataset.path={digits_dir}",
            "tracking.experiment=ray-team",
            f"hydra.sweep.dir={tmp_path / 'multirun'}",
            "hydra/launcher=ray",
            f"hydra.launcher.address={cluster.address}",
            "model=softmax,mlp",
            "model.hidden_dim=16",
            "optim.lr=0.1,0.2",
            "optim.epochs=2",
        ]
        out = cli(*args, cwd=tmp_path, env={**cluster.env, **team.env()}).stdout
        assert out.count("[ray] Ray task of") == 3  # one softmax group, two mlp jobs alone
        with signed_in(team.admin):
            client = MlflowClient(team.uri)
            experiment = client.get_experiment_by_name("ray-team")
            assert experiment is not None
            runs = client.search_runs([experiment.experiment_id], "tags.`sl.role` = 'job'")
            assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
            for run in runs:
                for metric in METRICS:
                    steps = [m.step for m in client.get_metric_history(run.info.run_id, metric)]
                    assert sorted(steps) == [1, 2], (run.info.run_id, metric)
                assert run.data.tags["sl.ray_task_id"] and run.data.tags["sl.ray_node"]
                params = {f.path for f in client.list_artifacts(run.info.run_id, "params")}
                assert params and params <= {"params/theta.npy", "params/W1.npy", "params/W2.npy"}


def test_a_search_on_ray_closes_a_pruned_trial_at_once_without_parameters(
    tmp_path: Path, digits_dir: Path, cluster: RayCluster
) -> None:
    out = _sweep(
        tmp_path,
        str(digits_dir),
        "hydra/sweeper=optuna",
        "dataset.val_size=200",
        "hydra.sweeper.sampler.seed=3",
        "hydra.sweeper.sampler.n_startup_trials=3",
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.pruner.n_startup_trials=1",
        "optim.batch_size=100",
        "optim.lr=tag(log,interval(0.0001,1.0))",
        "optim.epochs=int(interval(3,6))",
        cluster=cluster,
    ).stdout
    assert "[ray] Ray task of" in out
    frame = reading.runs_frame(f"sqlite:///{tmp_path / 'mlflow.db'}", "r")
    assert len(frame) == 8 and set(frame["status"]) == {"FINISHED"}
    pruned = frame[frame["tags.sl.pruned"] == "true"]
    assert len(pruned) >= 1, frame[["tags.sl.trial_state", "params.optim.lr"]]
    for _, run in pruned.iterrows():  # its epochs up to the verdict, and no θ
        history = _history(tmp_path, run["run_id"], "val/error")
        assert (
            len(history) == int(run["tags.sl.stopped_at_epoch"]) < int(run["params.optim.epochs"])
        )
        assert run.get("tags.sl.sha256.theta") != run.get("tags.sl.sha256.theta")  # NaN: none
        assert run["tags.sl.trial_state"] == "PRUNED"
    complete = frame[frame["tags.sl.trial_state"] == "COMPLETE"]
    assert complete["tags.sl.sha256.theta"].notna().all()
