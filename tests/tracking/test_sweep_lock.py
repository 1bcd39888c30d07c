"""The sweep lock against real stores: a SQLite file in a tmp dir, and a live MLflow server."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.servers import clean_env, mlflow_server
from mlflow import MlflowClient
from mlflow.entities import ViewType

from softmax_lab.errors import SweepLockedError
from softmax_lab.tracking.store import prepare_store
from softmax_lab.tracking.sweep_lock import (
    LOCK_PREFIX,
    RELEASED_PREFIX,
    Holder,
    SweepLock,
    acquire_sweep_lock,
    lock_name,
    process_start,
)

SIGNATURE = "0123456789abcdef"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One live MLflow server for this module's tests (each uses an experiment of its own)."""
    with mlflow_server(tmp_path_factory.mktemp("server")) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("server", marks=pytest.mark.slow)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(tracking URI, experiment id) of a fresh store: a SQLite file, or a new experiment on
    the live MLflow server."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        return uri, prepare_store(uri, "exp")
    url = request.getfixturevalue("server")
    return url, prepare_store(url, f"exp-{uuid.uuid4().hex}")


def active_locks(uri: str, experiment_id: str) -> dict[str, dict[str, str]]:
    """Name → tags of the locks of ``experiment_id``'s sweeps that exist, not deleted."""
    prefix = f"{LOCK_PREFIX}{experiment_id}/"
    experiments = MlflowClient(uri).search_experiments(view_type=ViewType.ACTIVE_ONLY)
    return {e.name: e.tags for e in experiments if e.name.startswith(prefix)}


def plant_lock(uri: str, experiment_id: str, holder: Holder) -> str:
    """A lock left by ``holder`` (as a killed holder leaves it); the lock experiment's id."""
    return MlflowClient(uri).create_experiment(
        lock_name(experiment_id, SIGNATURE), tags=holder.tags()
    )


def dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(child.stdout)


def test_a_lock_is_held_until_released(store: tuple[str, str]) -> None:
    uri, experiment_id = store
    lock = acquire_sweep_lock(uri, experiment_id, SIGNATURE)
    name = lock_name(experiment_id, SIGNATURE)
    assert lock.name == name and lock.took_over is None
    tags = active_locks(uri, experiment_id)[name]
    assert tags["sl.lock.pid"] == str(os.getpid())
    assert tags["sl.lock.host"] == socket.gethostname()
    assert tags["sl.lock.pid_start"] == process_start(os.getpid()) != ""

    with pytest.raises(SweepLockedError) as caught:
        acquire_sweep_lock(uri, experiment_id, SIGNATURE)
    message = str(caught.value)
    assert f"held by pid {os.getpid()} on host {socket.gethostname()} since " in message
    assert " ago)" in message and f"kill {os.getpid()}" in message

    other = acquire_sweep_lock(uri, experiment_id, "fedcba9876543210")  # another sweep
    other.release()
    lock.release()
    lock.release()  # idempotent
    assert active_locks(uri, experiment_id) == {}
    again = acquire_sweep_lock(uri, experiment_id, SIGNATURE)
    assert list(active_locks(uri, experiment_id)) == [name]
    again.release()
    client = MlflowClient(uri)
    for released in (lock, other, again):  # renamed away (freeing the name), then deleted
        found = client.get_experiment(released.experiment_id)
        assert found.lifecycle_stage == "deleted"
        assert found.name.startswith(RELEASED_PREFIX)


def test_of_locks_taken_at_once_exactly_one_wins(store: tuple[str, str]) -> None:
    uri, experiment_id = store
    start = threading.Barrier(4)
    won: list[SweepLock] = []
    lost: list[str] = []

    def take() -> None:
        start.wait()
        try:
            won.append(acquire_sweep_lock(uri, experiment_id, SIGNATURE))
        except SweepLockedError as e:
            lost.append(str(e))

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 3, lost
    won[0].release()


def test_a_stale_lock_of_a_dead_process_on_this_host_is_taken_over(
    store: tuple[str, str],
) -> None:
    uri, experiment_id = store
    gone = Holder(socket.gethostname(), dead_pid(), "12345", "", 1_700_000_000_000)
    stale = plant_lock(uri, experiment_id, gone)
    lock = acquire_sweep_lock(uri, experiment_id, SIGNATURE)
    assert lock.took_over == gone
    assert lock.experiment_id != stale
    assert MlflowClient(uri).get_experiment(stale).lifecycle_stage == "deleted"
    assert active_locks(uri, experiment_id)[lock.name]["sl.lock.pid"] == str(os.getpid())
    lock.release()


@pytest.mark.parametrize("change", ["start time", "boot id"])
def test_a_lock_whose_pid_is_now_another_process_is_stale(tmp_path: Path, change: str) -> None:
    """The pid is alive (this process), but it is not the process that took the lock: it
    started at another time, or the machine has rebooted since."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = prepare_store(uri, "exp")
    me = Holder.this_process()
    holder = Holder(
        me.host,
        me.pid,
        "1" if change == "start time" else me.pid_start,
        "another-boot" if change == "boot id" else me.boot_id,
        me.since_ms,
    )
    plant_lock(uri, experiment_id, holder)
    lock = acquire_sweep_lock(uri, experiment_id, SIGNATURE)
    assert lock.took_over == holder
    lock.release()


def test_a_lock_held_on_another_host_fails_and_says_how_to_break_it(
    store: tuple[str, str],
) -> None:
    uri, experiment_id = store
    far = Holder("lab-far-away", 4242, "99", "b", 1_700_000_000_000)
    lock_id = plant_lock(uri, experiment_id, far)
    with pytest.raises(SweepLockedError) as caught:
        acquire_sweep_lock(uri, experiment_id, SIGNATURE)
    message = str(caught.value)
    assert "held by pid 4242 on host lab-far-away since 2023-11-14 22:13:20 UTC (" in message
    assert "kill" not in message, "no kill advice for a process on another host"
    # the command the message gives breaks the lock: run it as a user would
    command = re.search(r"`(MLFLOW_TRACKING_URI=\S+ mlflow experiments delete [^`]+)`", message)
    assert command is not None, message
    assert f"--experiment-id {lock_id}" in command.group(1)
    env_part, *argv = shlex.split(command.group(1))
    env = {**clean_env(), "MLFLOW_TRACKING_URI": env_part.partition("=")[2]}
    subprocess.run(
        [sys.executable, "-m", "mlflow", *argv[1:]], env=env, check=True, capture_output=True
    )
    lock = acquire_sweep_lock(uri, experiment_id, SIGNATURE)
    assert lock.took_over is None and lock.experiment_id != lock_id
    lock.release()
    assert active_locks(uri, experiment_id) == {}
