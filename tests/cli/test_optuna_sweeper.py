"""``hydra/sweeper=optuna`` end to end: real ``softmax-lab`` processes, real SQLite stores, the
study in a real Optuna database beside the MLflow store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from helpers.cli import cli, common_overrides, store_uri
from helpers.servers import clean_env

from softmax_lab.tracking import reading

# a study small enough for seconds: 600 training digits, 200 held out, 200 test
SEARCH = (
    "hydra/sweeper=optuna",
    "dataset.val_size=200",
    "hydra.sweeper.sampler.seed=3",
    "hydra.sweeper.sampler.n_startup_trials=3",
    "optim.lr=tag(log,interval(0.01,1.0))",
    "optim.batch_size=choice(50,100)",
    "optim.epochs=int(interval(2,5))",
)


def _search(tmp: Path, digits_dir: Path, *extra: str, check: bool = True) -> Any:
    tmp.mkdir(exist_ok=True)
    return cli(*_argv(tmp, digits_dir, *extra)[3:], cwd=tmp, check=check)


def _argv(tmp: Path, digits_dir: Path, *extra: str) -> list[str]:
    """The command line of a search, as a process to start."""
    args = [*common_overrides(tmp, digits_dir), *SEARCH, *extra]
    return [sys.executable, "-m", "softmax_lab", "train", "-m", *args]


def _parent(uri: str) -> dict[str, Any]:
    frame = reading.runs_frame(uri, "t", include_parents=True)
    parents = frame[frame["tags.sl.role"] == "sweep"]
    assert len(parents) == 1, parents
    return parents.iloc[0].to_dict()


def _study(tmp: Path, uri: str) -> optuna.Study:
    name = _parent(uri)["tags.sl.study_name"]
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp / 'mlflow.optuna.db'}")


def _trials(study: optuna.Study) -> list[tuple[int, str, dict[str, Any], float | None]]:
    return [(t.number, t.state.name, t.params, t.value) for t in study.get_trials()]


@pytest.mark.slow
def test_a_seeded_study_repeats_its_trials_and_numbers_and_records_them_in_mlflow(
    tmp_path: Path, digits_dir: Path
) -> None:
    extra = ("hydra.sweeper.n_trials=8", "hydra.sweeper.n_jobs=2")
    out = _search(tmp_path / "a", digits_dir, *extra).stdout
    _search(tmp_path / "b", digits_dir, *extra)
    studies = {k: _study(tmp_path / k, store_uri(tmp_path / k)) for k in "ab"}
    trials = {k: _trials(s) for k, s in studies.items()}
    assert trials["a"] == trials["b"]  # same parameters, states and objective values
    assert len(trials["a"]) == 8
    assert {s for _, s, _, _ in trials["a"]} <= {"COMPLETE", "PRUNED"}
    assert "study t/" in out and "best trial" in out

    uri = store_uri(tmp_path / "a")
    parent = _parent(uri)
    jobs = reading.runs_frame(uri, "t")
    assert len(jobs) == 8 and set(jobs["parent_run_id"]) == {parent["run_id"]}
    by_number = {int(r["tags.sl.trial_number"]): r for _, r in jobs.iterrows()}
    for number, state, params, value in trials["a"]:
        run = by_number[number]
        assert run["tags.sl.trial_state"] == state
        assert run["tags.sl.hydra_job_num"] == str(number)
        assert float(run["params.optim.lr"]) == params["optim.lr"]
        history = reading.metric_history(uri, run["run_id"], "val/error")
        if state == "COMPLETE":
            assert [s for s, _ in history] == list(range(1, params["optim.epochs"] + 1))
            assert history[-1][1] == value
            assert run.get("tags.sl.pruned") != "true"
        else:  # pruned: FINISHED, the epochs it trained, fewer than asked for
            assert run["status"] == "FINISHED" and run["tags.sl.pruned"] == "true"
            assert len(history) == int(run["tags.sl.stopped_at_epoch"]) < params["optim.epochs"]
    best = studies["a"].best_trial
    assert parent["tags.sl.best_trial"] == str(best.number)
    assert parent["metrics.best/val/error"] == best.value
    best_run = by_number[best.number]
    assert (
        parent["metrics.best/test/error"]
        == reading.metric_history(uri, best_run["run_id"], "test/error")[-1][1]
    )
    assert parent["status"] == "FINISHED"
    assert parent["tags.best.optim.lr"] == str(best.params["optim.lr"])
    client_paths = {p.name for p in (tmp_path / "a" / "multirun" / "report" / "study").iterdir()}
    assert {"optimisation_history.png", "parallel_coordinates.png"} <= client_paths


@pytest.mark.slow
def test_pruning_stops_trials_early_and_compare_tells_them_apart(
    tmp_path: Path, digits_dir: Path
) -> None:
    _search(
        tmp_path,
        digits_dir,
        "hydra.sweeper.n_trials=10",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.pruner.n_startup_trials=1",
        "hydra.sweeper.pruner.n_warmup_steps=0",
        "optim.lr=tag(log,interval(0.0001,1.0))",  # small steps learn slowly: pruned
        "optim.batch_size=100",  # one batch size: each batch's trials train fused
    )
    uri = store_uri(tmp_path)
    study = _study(tmp_path, uri)
    pruned = [t for t in study.get_trials() if t.state.name == "PRUNED"]
    assert pruned, _trials(study)
    jobs = reading.runs_frame(uri, "t")
    flagged = jobs[jobs["tags.sl.pruned"] == "true"]
    assert len(flagged) == len(pruned)
    table = cli("compare", "--tracking-uri", uri, "--experiment", "t", cwd=tmp_path).stdout
    assert "pruned@" in table
    # pruned rows come after every trial that trained all its epochs
    lines = [line for line in table.splitlines() if "FINISHED" in line]
    first_pruned = next(i for i, line in enumerate(lines) if "pruned@" in line)
    assert all("pruned@" in line for line in lines[first_pruned:])
    # a pruned run reruns as it ran: its first epochs only (fused: in its group's plan)
    fused = flagged[flagged["tags.sl.fused"] == "true"]
    assert len(fused) == len(flagged)  # pruned columns of fused blocks
    again = fused.iloc[0]
    out = cli("rerun", again["run_id"], "--tracking-uri", uri, cwd=tmp_path).stdout
    assert "pruned by a search" in out
    assert out.rstrip().endswith("reproduced exactly"), out


def _interrupt_mid_batch(tmp: Path, digits_dir: Path, sig: signal.Signals) -> list[str]:
    """Start a 6-trial study whose trials train a second or two, send ``sig`` to its process
    group once its second batch is training, and wait for it; return its command line."""
    args = _argv(
        tmp,
        digits_dir,
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.n_jobs=2",
        "hydra/sweeper/pruner=none",
        "optim.epochs=int(interval(400,500))",  # a second or two: long enough to be stopped
    )
    proc = subprocess.Popen(
        args,
        cwd=tmp,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    finished = 0
    for line in proc.stdout:  # wait until the second batch is under way
        finished += line.startswith("run ") and ": FINISHED" in line
        if finished >= 2 and line.startswith(("[job ", "[fused group")):
            time.sleep(0.5)  # its runs are open and training
            break
    os.killpg(proc.pid, sig)
    proc.communicate(timeout=120)
    return args


@pytest.mark.slow
def test_a_study_resumed_after_sigterm_runs_the_interrupted_trials_again_and_ends(
    tmp_path: Path, digits_dir: Path
) -> None:
    args = _interrupt_mid_batch(tmp_path, digits_dir, signal.SIGTERM)
    uri = store_uri(tmp_path)
    study = _study(tmp_path, uri)
    states = [t.state.name for t in study.get_trials()]
    assert "RUNNING" not in states
    interrupted = [t for t in study.get_trials() if t.user_attrs.get("sl.interrupted")]
    assert interrupted and all(t.state.name == "FAIL" for t in interrupted)
    waiting = [t for t in study.get_trials() if t.state.name == "WAITING"]
    assert len(waiting) == len(interrupted)  # queued again (their parameters: checked below)
    assert set(reading.runs_frame(uri, "t")["status"]) <= {"FINISHED", "KILLED"}

    out = cli(*args[3:], "resume=true", cwd=tmp_path).stdout
    assert "resume: the study has" in out
    study = _study(tmp_path, uri)  # the same study, continued
    counted = [t for t in study.get_trials() if not t.user_attrs.get("sl.interrupted")]
    assert len(counted) == 6 and {t.state.name for t in counted} == {"COMPLETE"}
    retried = [t for t in counted if "sl.retry_of" in t.user_attrs]
    assert sorted(t.user_attrs["sl.retry_of"] for t in retried) == sorted(
        t.number for t in interrupted
    )
    for t in retried:
        first = study.trials[t.user_attrs["sl.retry_of"]]
        assert t.params == first.params
    parent = _parent(uri)
    assert parent["status"] == "FINISHED"
    jobs = reading.runs_frame(uri, "t")
    assert "RUNNING" not in set(jobs["status"])
    killed = jobs[jobs["status"] == "KILLED"]
    assert 1 <= len(killed) <= len(interrupted)  # a trial stopped before its run opened has none
    assert set(killed["tags.sl.hydra_job_num"]) <= {str(t.number) for t in interrupted}


@pytest.mark.slow
def test_two_processes_running_one_named_study_share_its_trials(
    tmp_path: Path, digits_dir: Path
) -> None:
    args = _argv(
        tmp_path,
        digits_dir,
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.study_name=shared",
    )
    procs = [
        subprocess.Popen(
            [*args, f"hydra.sweep.dir={tmp_path / f'multirun{i}'}"],
            cwd=tmp_path,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    study = optuna.load_study(
        study_name="shared", storage=f"sqlite:///{tmp_path / 'mlflow.optuna.db'}"
    )
    assert len(study.get_trials()) == 8
    assert {t.state.name for t in study.get_trials()} <= {"COMPLETE", "PRUNED"}
    owners = {t.user_attrs["sl.owner"]["sl.lock.pid"] for t in study.get_trials()}
    assert len(owners) == 2  # both processes ran trials
    jobs = reading.runs_frame(store_uri(tmp_path), "t")
    assert len(jobs) == 8 and jobs["parent_run_id"].nunique() == 1
    parent = _parent(store_uri(tmp_path))
    assert parent["status"] == "FINISHED"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("hydra.sweeper.objective=val/accuracy",), "hydra.sweeper.objective must be a metric"),
        (("dataset.val_size=0",), "needs a validation split"),
        (("hydra.sweeper.direction=down",), "hydra.sweeper.direction must be minimize"),
        (("hydra.sweeper.n_trials=0",), "hydra.sweeper.n_trials must be an int >= 1"),
        (("optim.lr=interval(-1.0,1.0)",), "optim.lr must be > 0"),
        (("optim.batch_size=choice(50,0)",), "optim.batch_size"),
    ],
)
def test_a_bad_study_is_refused_before_anything_is_made(
    tmp_path: Path, digits_dir: Path, extra: tuple[str, ...], message: str
) -> None:
    proc = _search(tmp_path, digits_dir, *extra, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()
    assert not (tmp_path / "mlflow.optuna.db").exists()
    assert not (tmp_path / "multirun").exists()


@pytest.mark.slow
def test_a_diverging_trial_fails_and_the_study_goes_on(tmp_path: Path, digits_dir: Path) -> None:
    proc = _search(
        tmp_path,
        digits_dir,
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2",
        "hydra/sweeper/pruner=none",
        "optim.lr=choice(0.1,100000.0)",
        check=False,
    )
    uri = store_uri(tmp_path)
    study = _study(tmp_path, uri)
    states = {t.params["optim.lr"]: t.state.name for t in study.get_trials()}
    assert states.get(100000.0) == "FAIL" and states.get(0.1) == "COMPLETE", states
    assert len(study.get_trials()) == 4
    assert "trial" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_study_resumed_after_sigkill_fails_the_dead_trials_and_runs_them_again(
    tmp_path: Path, digits_dir: Path
) -> None:
    args = _interrupt_mid_batch(tmp_path, digits_dir, signal.SIGKILL)
    uri = store_uri(tmp_path)
    study = _study(tmp_path, uri)
    left = [t for t in study.get_trials() if t.state.name == "RUNNING"]
    assert left, "SIGKILL leaves the batch's trials RUNNING"
    running = reading.runs_frame(uri, "t")
    running = running[running["status"] == "RUNNING"]
    assert 1 <= len(running) <= len(left)

    out = cli(*args[3:], "resume=true", cwd=tmp_path).stdout
    for t in left:
        assert f"resume: trial {t.number} was left RUNNING by a dead process" in out
    study = _study(tmp_path, uri)
    dead = {t.number: t for t in study.get_trials() if t.user_attrs.get("sl.interrupted")}
    assert sorted(dead) == sorted(t.number for t in left)
    assert all(t.state.name == "FAIL" for t in dead.values())
    counted = [t for t in study.get_trials() if t.number not in dead]
    assert len(counted) == 6 and {t.state.name for t in counted} == {"COMPLETE"}
    retried = {t.user_attrs["sl.retry_of"]: t for t in counted if "sl.retry_of" in t.user_attrs}
    assert sorted(retried) == sorted(dead)
    assert all(retried[n].params == dead[n].params for n in dead)
    jobs = reading.runs_frame(uri, "t")
    killed = jobs[jobs["run_id"].isin(set(running["run_id"]))]
    assert set(killed["status"]) == {"KILLED"}  # closed by the resume, naming the dead process
    assert all("died" in r for r in killed["tags.sl.failure_reason"])
    assert "RUNNING" not in set(jobs["status"]) and _parent(uri)["status"] == "FINISHED"
