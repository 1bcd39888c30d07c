"""Sweeps killed half-way close their runs as KILLED; ``resume=true`` finishes the rest once.

A sweep killed outright (SIGKILL) leaves its runs RUNNING and its lock in the store: the resume
takes the lock over, closes those runs as KILLED, runs each job left under its own number and
output directory, and a second resume started at the same time stops at the lock.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import run_command
from helpers.servers import clean_env
from mlflow import MlflowClient
from mlflow.entities import ViewType

from softmax_lab.data.idx import read_idx, write_idx
from softmax_lab.data.idx_sets import IDX_FILES
from softmax_lab.errors import TrackingError
from softmax_lab.tracking import reading
from softmax_lab.tracking.sweep_lock import LOCK_PREFIX

LRS = ("0.05", "0.1", "0.2", "0.4")


def _sweep_args(tmp_path: Path, digits_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "softmax_lab",
        "train",
        "-m",
        "dataset=idx",
        f"dataset.path={digits_dir}",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        "tracking.experiment=r",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        f"optim.lr={','.join(LRS)}",
        "optim.epochs=250",  # a job long enough (about a second) to be caught under load
        *extra,
    ]


BASIC = "hydra/launcher=basic"  # jobs one after another, so one can be caught mid-way


def _heed_ctrl_c() -> None:
    """In the child before it runs Python: Ctrl-C (SIGINT) at its default, as in a terminal.
    A shell's background job inherits SIGINT ignored, and Python then never turns it into
    KeyboardInterrupt: tests run under ``cmd &`` would see the sweep ignore it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args: list[str], tmp_path: Path, *, session: bool = False) -> subprocess.Popen[str]:
    """The sweep process, Ctrl-C heeded; with ``session``, in a process group of its own (as
    ``setsid``)."""
    return subprocess.Popen(
        args,
        cwd=tmp_path,
        env=clean_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=session,
        preexec_fn=_heed_ctrl_c,
    )


def _wait_mid_job(uri: str, proc: subprocess.Popen[str], timeout: float = 240) -> str:
    """Wait until one job has FINISHED and the next is under way (RUNNING: training, or drawing
    and logging what it trained); return that run's id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        if _has_experiment(uri):
            jobs = reading.runs_frame(uri, "r")
            training = jobs.loc[jobs["status"] == "RUNNING", "run_id"]
            if (jobs["status"] == "FINISHED").sum() >= 1 and len(training) == 1:
                return str(training.iloc[0])
        time.sleep(0.1)
    raise AssertionError("no job was running after a finished one in time")


def _children(pid: int) -> list[int]:
    """The live (not zombie) processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie has stopped running)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def _active_locks(uri: str) -> list[str]:
    """The sweep locks held in the store (lock experiments not released)."""
    experiments = MlflowClient(uri).search_experiments(view_type=ViewType.ACTIVE_ONLY)
    return [e.name for e in experiments if e.name.startswith(LOCK_PREFIX)]


def _tree(directory: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``directory``: relative path → (mtime in ns, SHA-256 of its bytes)."""
    return {
        str(f.relative_to(directory)): (
            f.stat().st_mtime_ns,
            hashlib.sha256(f.read_bytes()).hexdigest(),
        )
        for f in sorted(directory.rglob("*"))
        if f.is_file()
    }


def _kill_outright(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the sweep process and reap it."""
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def _check_resumed(
    uri: str,
    sweep_dir: Path,
    grid: list[dict[str, str]],
    dead: set[str],
    kept: dict[int, dict[str, tuple[int, str]]],
) -> None:
    """After a resume of a SIGKILLed sweep: the runs it left RUNNING are KILLED with a reason
    naming the resume, each job of ``grid`` has exactly one FINISHED run whose job number is
    its index in the grid, each job's output dir is ``<sweep dir>/<num>``, the skipped jobs'
    dirs (``kept``: num → ``_tree`` before the resume) are untouched, no lock is left."""
    runs = reading.runs_frame(uri, "r", include_parents=True)
    assert "RUNNING" not in set(runs["status"]), runs[["run_name", "status"]]
    closed = runs[runs["run_id"].isin(dead)]
    assert len(closed) == len(dead) and set(closed["status"]) == {"KILLED"}
    for reason in closed["tags.sl.failure_reason"]:
        assert "left it RUNNING; closed by resume=true of sweep" in reason, reason
    jobs = runs[runs["tags.sl.role"] == "job"]
    finished = jobs[jobs["status"] == "FINISHED"]
    assert len(finished) == len(grid), finished[["run_name", "tags.sl.hydra_job_num"]]
    for num, job in enumerate(grid):
        mine = finished
        for key, value in job.items():
            mine = mine[mine[f"params.{key}"] == value]
        assert list(mine["tags.sl.hydra_job_num"]) == [str(num)], (job, mine)
        overrides = (sweep_dir / str(num) / ".hydra" / "overrides.yaml").read_text()
        assert all(f"{k}={v}" in overrides for k, v in job.items()), (num, overrides)
    numbered = sorted(p.name for p in sweep_dir.iterdir() if p.name.isdigit())
    assert numbered == [str(n) for n in range(len(grid))], "a dir per job, no other"
    for num, before in kept.items():
        assert _tree(sweep_dir / str(num)) == before, f"skipped job {num}'s dir was changed"
    assert _active_locks(uri) == []


def _has_experiment(uri: str) -> bool:
    try:
        reading.runs_frame(uri, "r")
    except (ValueError, TrackingError):
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_killed_sweep_resumes_to_every_job_finished_once(
    tmp_path: Path, digits_dir: Path, sig: signal.Signals
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = _start(_sweep_args(tmp_path, digits_dir, BASIC), tmp_path)
    try:
        running = _wait_mid_job(uri, proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # reap it and close its pipes
    assert proc.returncode != 0, f"the sweep was not interrupted:\n{out}\n{err}"
    assert _active_locks(uri) == [], "the interrupted sweep released its lock"
    runs = reading.runs_frame(uri, "r", include_parents=True)
    assert "RUNNING" not in set(runs["status"]), runs[["run_name", "status"]]
    killed = runs[runs["status"] == "KILLED"]
    assert set(killed["tags.sl.role"]) == {"job", "sweep"}, "the job under way and the parent"
    assert running in set(killed["run_id"])
    done_before = set(runs.loc[runs["status"] == "FINISHED", "params.optim.lr"])
    assert 1 <= len(done_before) < len(LRS)

    resumed = run_command(
        _sweep_args(tmp_path, digits_dir, BASIC, "resume=true"),
        cwd=tmp_path,
        env=clean_env(),
        check=False,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resume: {len(done_before)} of 4 jobs skipped" in resumed.stdout
    assert "taken over" not in resumed.stdout and "closed as KILLED" not in resumed.stdout
    assert _active_locks(uri) == []

    jobs = reading.runs_frame(uri, "r")
    finished = jobs[jobs["status"] == "FINISHED"]
    assert sorted(finished["params.optim.lr"]) == sorted(LRS), "every job FINISHED exactly once"
    assert finished["tags.sl.config_hash"].is_unique
    assert len(set(jobs["parent_run_id"])) == 1, "the resumed jobs join the original sweep"
    parents = reading.runs_frame(uri, "r", include_parents=True)
    parent = parents[parents["tags.sl.role"] == "sweep"]
    assert list(parent["status"]) == ["FINISHED"]


@pytest.mark.slow
def test_resume_with_everything_finished_runs_nothing(tmp_path: Path, digits_dir: Path) -> None:
    args = [*_sweep_args(tmp_path, digits_dir)[:-2], "optim.lr=0.1,0.2", "optim.epochs=1"]
    first = run_command(args, cwd=tmp_path, env=clean_env(), check=False)
    assert first.returncode == 0, first.stderr
    again = run_command([*args, "resume=true"], cwd=tmp_path, env=clean_env(), check=False)
    assert again.returncode == 0, again.stderr
    assert "resume: 2 of 2 jobs skipped" in again.stdout and "0 to run" in again.stdout
    assert len(reading.runs_frame(f"sqlite:///{tmp_path / 'mlflow.db'}", "r")) == 2


@pytest.fixture(scope="module")
def slow_digits_dir(digits_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits, each training image 15 times (12,000 rows): epochs slow enough that a fused
    group, which starts training before the store is even open, is still training when the
    sweep is interrupted."""
    directory = tmp_path_factory.mktemp("slow-digits")
    for i, base in enumerate(IDX_FILES):
        array = read_idx(digits_dir / (base + ".gz"))
        write_idx(
            directory / (base + ".gz"),
            np.tile(array, (15,) + (1,) * (array.ndim - 1)) if i < 2 else array,
        )
    return directory


@pytest.mark.slow
@pytest.mark.parametrize("target", ["sweep", "process group"])
def test_sweep_killed_during_fused_training_closes_every_open_run(
    tmp_path: Path, slow_digits_dir: Path, target: str
) -> None:
    """SIGTERM to the sweep process, or to its whole process group (``kill -TERM -PGID``: the
    training processes get it too, and die of it before the sweep hears of it)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [*_sweep_args(tmp_path, slow_digits_dir)[:-1], "optim.epochs=300"]
    proc = _start(args, tmp_path, session=target == "process group")
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # all four fused runs open, some epochs logged
            if _has_experiment(uri):
                jobs = reading.runs_frame(uri, "r")
                logged = "metrics.test/error" in jobs and jobs["metrics.test/error"].notna().all()
                if len(jobs) == 4 and logged:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("the fused group did not start in time")
        trainers = _children(proc.pid)
        assert trainers, "the fused group was not training in a child process"
        if target == "process group":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert not _alive(trainers), "a training process outlived the interrupted sweep"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # reap it and close its pipes
    assert proc.returncode == 130, err
    assert "the open runs were closed as KILLED" in err
    runs = reading.runs_frame(uri, "r", include_parents=True)
    assert set(runs["status"]) == {"KILLED"} and len(runs) == 5, runs[["status", "run_id"]]
    again = run_command([*args, "resume=true"], cwd=tmp_path, env=clean_env(), check=False)
    assert again.returncode == 0, again.stderr
    assert "resume: 0 of 4 jobs skipped" in again.stdout
    finished = reading.runs_frame(uri, "r").query("status == 'FINISHED'")
    assert sorted(finished["params.optim.lr"]) == sorted(LRS)


@pytest.mark.slow
def test_training_processes_die_with_a_killed_sweep(tmp_path: Path, slow_digits_dir: Path) -> None:
    """SIGKILL leaves the sweep no chance to stop its children: the kernel does."""
    proc = _start([*_sweep_args(tmp_path, slow_digits_dir)[:-1], "optim.epochs=300"], tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not (trainers := _children(proc.pid)):
            assert time.monotonic() < deadline, "no training process started"
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.05)
        proc.kill()
        proc.communicate(timeout=60)
        deadline = time.monotonic() + 10
        while _alive(trainers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(trainers), "a training process outlived its killed sweep"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.slow
def test_resume_after_sigkill_closes_dead_runs_and_keeps_job_numbers_fused(
    tmp_path: Path, slow_digits_dir: Path
) -> None:
    """Fused: the 5-epoch jobs (0 and 2) finish while the 300-epoch ones (1 and 3) train; a
    SIGKILL leaves those two and the parent RUNNING. The resume runs jobs 1 and 3, fused
    together, as themselves."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep_dir = tmp_path / "multirun"
    args = [*_sweep_args(tmp_path, slow_digits_dir)[:-2], "optim.lr=0.05,0.1", "optim.epochs=5,300"]
    grid = [
        {"optim.lr": lr, "optim.epochs": e}
        for lr, e in itertools.product(("0.05", "0.1"), ("5", "300"))
    ]
    proc = _start(args, tmp_path)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # the short jobs done, the long ones under way
            assert proc.poll() is None, "the sweep ended before it could be killed"
            if _has_experiment(uri):
                jobs = reading.runs_frame(uri, "r")
                if len(jobs) == 4 and sorted(jobs["status"]) == ["FINISHED"] * 2 + ["RUNNING"] * 2:
                    status = dict(zip(jobs["params.optim.epochs"], jobs["status"], strict=True))
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("the short jobs did not finish in time")
        _kill_outright(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    runs = reading.runs_frame(uri, "r", include_parents=True)
    dead = set(runs.loc[runs["status"] == "RUNNING", "run_id"])
    assert len(dead) == 3, "the two long jobs and the parent were left RUNNING"
    assert status == {"5": "FINISHED", "300": "RUNNING"}
    assert len(_active_locks(uri)) == 1, "the killed sweep's lock stays behind"
    kept = {0: _tree(sweep_dir / "0"), 2: _tree(sweep_dir / "2")}

    resumed = run_command([*args, "resume=true"], cwd=tmp_path, env=clean_env(), check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"sweep lock: taken over from a dead process (pid {proc.pid} on host" in resumed.stdout
    assert "resume: 2 of 4 jobs skipped" in resumed.stdout
    assert "resume: closed as KILLED 2 runs the dead sweep left RUNNING" in resumed.stdout
    assert "[fused group" in resumed.stdout, "the two jobs left still train fused"
    dead.discard(str(runs.loc[runs["tags.sl.role"] == "sweep", "run_id"].iloc[0]))  # reopened
    _check_resumed(uri, sweep_dir, grid, dead, kept)


@pytest.mark.slow
def test_two_resumes_at_once_after_sigkill_train_each_job_once(
    tmp_path: Path, slow_digits_dir: Path
) -> None:
    """Basic launcher: killed during job k, two resumes started together. One takes the dead
    sweep's lock over, closes its RUNNING runs and runs jobs k… as jobs k…; the other stops at
    the lock, naming the holder, with exit code 2."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep_dir = tmp_path / "multirun"
    args = [*_sweep_args(tmp_path, slow_digits_dir)[:-1], "optim.epochs=60", BASIC]
    grid = [{"optim.lr": lr} for lr in LRS]
    first = _start(args, tmp_path)
    try:
        _wait_mid_job(uri, first)
        _kill_outright(first)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    runs = reading.runs_frame(uri, "r", include_parents=True)
    dead = set(runs.loc[runs["status"] == "RUNNING", "run_id"])
    parent = str(runs.loc[runs["tags.sl.role"] == "sweep", "run_id"].iloc[0])
    assert parent in dead and len(dead) == 2, "the job under way and the parent"
    (running,) = dead - {parent}
    done = sorted(int(n) for n in runs.loc[runs["status"] == "FINISHED", "tags.sl.hydra_job_num"])
    assert done == list(range(len(done))) and 1 <= len(done) < len(LRS)
    kept = {num: _tree(sweep_dir / str(num)) for num in done}

    both = [_start([*args, "resume=true"], tmp_path) for _ in range(2)]
    outputs = []
    try:
        for proc in both:
            outputs.append(proc.communicate(timeout=600))
    finally:
        for proc in both:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    codes = [proc.returncode for proc in both]
    assert sorted(codes) == [0, 2], outputs
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    out, _ = outputs[winner]
    _, err = outputs[loser]
    assert err.count("\n") == 1 and err.startswith(f"softmax-lab: sweep lock '{LOCK_PREFIX}"), err
    assert f"is held by pid {both[winner].pid} on host " in err, err
    assert err.rstrip().endswith("; nothing was run"), err
    assert f"taken over from a dead process (pid {first.pid} on host" in out
    assert f"resume: {len(done)} of 4 jobs skipped" in out
    assert "resume: closed as KILLED 1 run the dead sweep left RUNNING" in out

    jobs = reading.runs_frame(uri, "r")
    assert len(jobs) == len(done) + 1 + (len(LRS) - len(done)), "each job left trained once"
    _check_resumed(uri, sweep_dir, grid, {running}, kept)
