"""Four sweeps started at the same moment into one store: a fresh SQLite file (which none of them
finds made: the migration race) and a real team store; then the same while one sweep is killed
with SIGKILL half-way and resumed. Afterwards every job has exactly one FINISHED run with all its
metric points and θ, the killed sweep leaves only KILLED runs behind, and nothing is RUNNING.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.load import audit, start_sweeps, sweep_argv, wait_all
from helpers.team_store import TeamStore, running_team_store, signed_in
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

SWEEPS, JOBS, EPOCHS = 4, 5, 2
POLL = 0.05  # seconds between looks at the store, leaving the CPUs to the sweeps


def _assert_nothing_lost(client: MlflowClient, *, killed: int = -1) -> None:
    """Every sweep's jobs: one FINISHED run each, complete; no run RUNNING; KILLED runs only in
    sweep ``killed``."""
    for index in range(SWEEPS):
        found = audit(client, f"load-{index}", EPOCHS)
        assert sorted(found.finished.values()) == [1] * JOBS, (index, found)
        assert found.incomplete == [], (index, found)
        assert found.statuses["RUNNING"] == 0 and found.statuses["FAILED"] == 0, (index, found)
        if index != killed:
            assert found.statuses == {"FINISHED": JOBS + 1}, (index, found)  # jobs + parent


def test_four_sweeps_at_once_into_a_fresh_sqlite_file(tmp_path: Path, digits_dir: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"  # neither the file nor its directory
    argvs = [sweep_argv(tmp_path, digits_dir, uri, i, JOBS) for i in range(SWEEPS)]
    for code, out, err in wait_all(start_sweeps(argvs, tmp_path)):
        assert code == 0, out + err
        assert "database is locked" not in err and "Traceback" not in err, err
    _assert_nothing_lost(MlflowClient(uri))


def test_a_sweep_killed_half_way_and_resumed_loses_nothing(
    tmp_path: Path, digits_dir: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argvs = [sweep_argv(tmp_path, digits_dir, uri, i, JOBS) for i in range(SWEEPS)]
    procs = start_sweeps(argvs, tmp_path)
    # wait for the event: sweep 0 has finished two of its jobs and opened the next one's run.
    # The client only once the store exists: MlflowClient makes and migrates a missing SQLite
    # file as it starts, which would race the sweeps (the race this test is to show they avoid).
    while not (tmp_path / "mlflow.db").exists():
        assert procs[0].poll() is None, wait_all(procs)[0]
        time.sleep(POLL)
    client = MlflowClient(uri)
    while True:
        assert procs[0].poll() is None, wait_all(procs)[0]
        experiment = client.get_experiment_by_name("load-0")
        if experiment:
            jobs = client.search_runs([experiment.experiment_id], "tags.`sl.role` = 'job'")
            statuses = [r.info.status for r in jobs]
            if statuses.count("FINISHED") >= 2 and "RUNNING" in statuses:
                break
        time.sleep(POLL)
    os.killpg(procs[0].pid, signal.SIGKILL)
    results = wait_all(procs)
    assert results[0][0] == -signal.SIGKILL
    assert all(code == 0 for code, _, _ in results[1:]), results[1:]

    resumed = start_sweeps([[*argvs[0], "resume=true"]], tmp_path)
    [(code, out, err)] = wait_all(resumed)
    assert code == 0, out + err
    assert "sweep lock: taken over from a dead process" in out + err
    assert "resume: closed as KILLED 1 run the dead sweep left RUNNING" in out + err
    _assert_nothing_lost(client, killed=0)
    leftovers = audit(client, "load-0", EPOCHS).statuses
    assert leftovers == {"FINISHED": JOBS + 1, "KILLED": 1}, leftovers


@pytest.fixture(scope="module")
def team() -> Iterator[TeamStore]:
    with running_team_store() as store:
        yield store


def test_four_sweeps_at_once_into_the_team_store(
    team: TeamStore, tmp_path: Path, digits_dir: Path
) -> None:
    argvs = [sweep_argv(tmp_path, digits_dir, team.uri, i, JOBS) for i in range(SWEEPS)]
    for code, out, err in wait_all(start_sweeps(argvs, tmp_path, team.admin)):
        assert code == 0, out + err
        assert "Traceback" not in err, err
    with signed_in(team.admin):
        _assert_nothing_lost(MlflowClient(team.uri))
