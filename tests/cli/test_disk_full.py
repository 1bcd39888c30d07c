"""A full disk (issue 12): a small tmpfs mounted under the test's directory (CI runs as root)
holds the sweep directory, the store, or both, filled to leave a few KiB.

What must hold whatever fills: the command ends (no minutes of retries), prints a line per
failed job and a summary, never a traceback; no run is left RUNNING unless the store itself
cannot take the write, and then one line names the runs left; no 0-byte, truncated or
temporary file is left in the output directories.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from helpers.cli import cli
from helpers.mounts import fill, tmpfs

from softmax_lab.tracking.reading import runs_frame
from softmax_lab.tracking.store import prepare_store

# two fused softmax jobs and two mlp jobs (each alone, through Hydra's own run_job)
SWEEP = ["model=softmax,mlp", "model.hidden_dim=8", "optim.lr=0.1,0.2", "optim.epochs=2"]
GRID = ["optim.lr=0.05,0.2,0.5", "optim.batch_size=50,100", "optim.epochs=2,3"]  # 12 fused jobs


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "tiny", "2m") as mount:
        yield mount


def sweep(
    tmp_path: Path, digits_dir: Path, *, store: Path, sweep_dir: Path, grid: list[str]
) -> tuple[subprocess.CompletedProcess[str], float]:
    args = [
        "train",
        "-m",
        "dataset=idx",
        f"dataset.path={digits_dir}",
        f"tracking.uri=sqlite:///{store}",
        "tracking.experiment=t",
        f"hydra.sweep.dir={sweep_dir}",
        *grid,
    ]
    started = time.monotonic()
    proc = cli(*args, cwd=tmp_path, check=False)
    return proc, time.monotonic() - started


def runs(store: Path) -> pd.DataFrame:
    return runs_frame(f"sqlite:///{store}", "t", include_parents=True)


def assert_short_and_clear(proc: subprocess.CompletedProcess[str], most_lines: int) -> None:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "Logging error" not in out, out
    assert out.count("\n") <= most_lines, out


def assert_no_partial_files(directory: Path) -> None:
    """Every file whole: none empty (but logs nothing was written to), none temporary, and
    logs end with a whole line."""
    for path in directory.rglob("*"):
        if not path.is_file() or path.name == "filler":
            continue
        assert not path.name.endswith(".tmp"), path
        if path.suffix == ".log":
            text = path.read_bytes()
            assert text == b"" or text.endswith(b"\n"), path
        else:
            assert path.stat().st_size > 0, path


@pytest.mark.slow
def test_a_full_sweep_dir_fails_every_job_with_the_cause_and_the_path(
    tmp_path: Path, digits_dir: Path, tiny: Path
) -> None:
    fill(tiny, 12 * 1024)  # multirun.yaml fits; the jobs' Hydra files do not
    store = tmp_path / "mlflow.db"
    proc, _ = sweep(tmp_path, digits_dir, store=store, sweep_dir=tiny / "sweep", grid=SWEEP)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert_short_and_clear(proc, 40)
    found = runs(store)
    jobs = found[found["tags.sl.role"] == "job"]
    assert len(jobs) == 4
    assert set(found["status"]) == {"FAILED"}  # the parent too; nothing RUNNING
    for reason in jobs["tags.sl.failure_reason"]:
        assert "No space left on device" in reason and str(tiny / "sweep") in reason, reason
    assert_no_partial_files(tiny)


@pytest.mark.slow
def test_a_sweep_dir_without_room_for_multirun_yaml_stops_before_any_job(
    tmp_path: Path, digits_dir: Path, tiny: Path
) -> None:
    fill(tiny, 0)
    store = tmp_path / "mlflow.db"
    proc, _ = sweep(tmp_path, digits_dir, store=store, sweep_dir=tiny / "sweep", grid=SWEEP)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert_short_and_clear(proc, 3)
    line = proc.stderr.strip()
    assert "No space left on device" in line and "multirun.yaml" in line, line
    found = runs(store)
    assert list(found["status"]) == ["FAILED"]  # the parent alone, with the cause
    assert "multirun.yaml" in found["tags.sl.failure_reason"].iloc[0]
    assert_no_partial_files(tiny)


def make_store(db: Path) -> None:
    """An existing store (made in another process: this one must not hold it open)."""
    create = f"from {prepare_store.__module__} import prepare_store as p; p({{!r}}, 't')"
    subprocess.run([sys.executable, "-c", create.format(f"sqlite:///{db}")], check=True)


def left_running(stderr: str) -> set[str]:
    """The run ids a sweep says its store could not close."""
    for line in stderr.splitlines():
        if "left RUNNING:" in line:
            return {w.strip(",") for w in line.split("left RUNNING:")[1].split() if len(w) > 20}
    return set()


@pytest.mark.slow
def test_a_full_store_fails_fast_and_names_the_runs_it_could_not_close(
    tmp_path: Path, digits_dir: Path, tiny: Path
) -> None:
    store = tiny / "mlflow.db"
    make_store(store)
    fill(tiny, 300 * 1024)  # above the 256 KiB pre-flight, far below 12 jobs' writes
    proc, seconds = sweep(
        tmp_path, digits_dir, store=store, sweep_dir=tmp_path / "sweep", grid=GRID
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert seconds < 120  # a full store is not retried
    assert "database or disk is full" in proc.stdout + proc.stderr
    assert_short_and_clear(proc, 12 * 3 + 30)
    found = runs(store)
    running = set(found.loc[found["status"] == "RUNNING", "run_id"])
    assert running <= left_running(proc.stderr), proc.stderr
    if running:
        assert f"the store at sqlite:///{store}" in proc.stderr
    assert_no_partial_files(tmp_path / "sweep")


@pytest.mark.slow
def test_a_store_with_almost_no_space_is_refused_before_any_work(
    tmp_path: Path, digits_dir: Path, tiny: Path
) -> None:
    store = tiny / "mlflow.db"
    make_store(store)
    fill(tiny, 64 * 1024)
    proc, _ = sweep(tmp_path, digits_dir, store=store, sweep_dir=tmp_path / "sweep", grid=GRID)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "KiB free" in proc.stderr, proc.stderr
    assert runs(store).empty
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_store_and_sweep_dir_on_one_full_disk_end_short_and_clear(
    tmp_path: Path, digits_dir: Path, tiny: Path
) -> None:
    """The issue's case: both on one 2 MB tmpfs, the store made by the sweep itself."""
    fill(tiny, 1300 * 1024)
    store = tiny / "mlflow.db"
    proc, seconds = sweep(tmp_path, digits_dir, store=store, sweep_dir=tiny / "sweep", grid=GRID)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert seconds < 120
    assert_short_and_clear(proc, 12 * 3 + 30)
    found = runs(store)
    running = set(found.loc[found["status"] == "RUNNING", "run_id"])
    assert running <= left_running(proc.stderr), proc.stderr
    assert_no_partial_files(tiny)
