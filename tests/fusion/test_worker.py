"""A fused group trained in a child process gives bit for bit what training here gives."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from softmax_lab.core.training import DivergenceError, EpochEnd, EpochMetrics, TrainResult
from softmax_lab.data.dataset import Dataset
from softmax_lab.data.sources import load_dataset
from softmax_lab.fusion.stacked import plan_fused, train_group
from softmax_lab.fusion.worker import NICENESS, FusedWorker, WorkerError, WorkerStoppedError


@pytest.fixture(scope="module")
def digits() -> Dataset:
    d = load_dataset("mnist_5k")
    return Dataset(
        "mnist_5k", d.X_train[:1500], d.y_train[:1500], d.X_test[:500], d.y_test[:500], "", ""
    )


def _collect(
    worker: FusedWorker,
) -> tuple[dict[int, list[EpochMetrics]], dict[int, TrainResult]]:
    epochs: dict[int, list[EpochMetrics]] = {}
    ended: dict[int, TrainResult] = {}
    for j, event in worker.events():
        if isinstance(event, EpochMetrics):
            assert j not in ended, "an epoch came after its job had ended"
            epochs.setdefault(j, []).append(event)
        else:
            ended[j] = event
    return epochs, ended


def _status(pid: int) -> dict[str, str]:
    """/proc/<pid>/status as a dict."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def _strip(history: list[EpochMetrics]) -> list[tuple[float, ...]]:
    """Everything but the wall time."""
    return [(m.epoch, m.train_loss, m.train_error, m.test_loss, m.test_error) for m in history]


def test_worker_trains_bit_for_bit_as_in_process(digits: Dataset) -> None:
    plan = plan_fused([0.05, 0.2, 0.5, 0.2], [2, 3, 4, 1])
    worker = FusedWorker(digits, plan, batch_size=50, shuffle=True, seed=3)
    epochs, ended = _collect(worker)
    with threadpool_limits(limits=1, user_api="blas"):  # as the child, and a sweep, train
        here = train_group(digits, plan, batch_size=50, shuffle=True, seed=3)
    assert sorted(ended) == [0, 1, 2, 3]
    assert worker.finished_at is not None and worker.finished_at <= time.perf_counter()
    for j, mine in enumerate(here):
        theirs = ended[j]
        assert theirs.error is None and "theta" in theirs.params and "theta" in mine.params
        assert theirs.params["theta"].tobytes() == mine.params["theta"].tobytes()
        assert theirs.test_confusion is not None and mine.test_confusion is not None
        assert (theirs.test_confusion == mine.test_confusion).all()
        assert _strip(theirs.history) == _strip(mine.history) == _strip(epochs[j])
        assert len(theirs.history) == plan.job_epochs[j]


def test_a_lockstep_worker_stops_jobs_bit_for_bit_as_train_group_does(digits: Dataset) -> None:
    plan = plan_fused([0.05, 0.2, 0.5, 0.2], [3, 4, 4, 2])  # jobs 1 and 3 read one block
    stops = {2: {1}, 3: {0}}  # job 0 at its last epoch: ignored
    worker = FusedWorker(digits, plan, batch_size=50, shuffle=True, seed=3, lockstep=True)
    epochs: dict[int, list[EpochMetrics]] = {}
    ended: dict[int, TrainResult] = {}
    ends: list[int] = []
    for j, event in worker.events():
        if isinstance(event, EpochEnd):
            assert j == -1 and event.epoch == len(ends) + 1  # each epoch once, in order
            ends.append(event.epoch)
            worker.verdict(event.epoch, stops.get(event.epoch, set()))
        elif isinstance(event, EpochMetrics):
            assert j not in ended and event.epoch == len(ends) + 1  # before its EpochEnd
            epochs.setdefault(j, []).append(event)
        else:
            ended[j] = event
    with threadpool_limits(limits=1, user_api="blas"):
        here = train_group(
            digits,
            plan,
            batch_size=50,
            shuffle=True,
            seed=3,
            judge=lambda e: stops.get(e, set()),
        )
    assert ends == [1, 2, 3, 4]
    assert [ended[j].stopped_at for j in range(4)] == [m.stopped_at for m in here]
    assert [m.stopped_at for m in here] == [None, 2, None, None]
    assert [m.epoch for m in ended[1].history] == [m.epoch for m in epochs[1]] == [1, 2]
    for j, mine in enumerate(here):
        theirs = ended[j]
        assert theirs.params["theta"].tobytes() == mine.params["theta"].tobytes()
        assert _strip(theirs.history) == _strip(mine.history) == _strip(epochs[j])


def test_only_a_lockstep_worker_takes_verdicts(digits: Dataset) -> None:
    worker = FusedWorker(digits, plan_fused([0.1], [1]), batch_size=50, shuffle=False, seed=0)
    try:
        with pytest.raises(ValueError, match=r"a verdict needs FusedWorker\(..., lockstep=True\)"):
            worker.verdict(1, ())
        assert not any(isinstance(e, EpochEnd) for _, e in worker.events())
    finally:
        worker.stop()


def test_worker_validates_bit_for_bit_as_in_process(digits: Dataset) -> None:
    data = Dataset(
        "mnist_5k",
        digits.X_train[:1200],
        digits.y_train[:1200],
        digits.X_test,
        digits.y_test,
        "",
        "",
        X_val=digits.X_train[1200:],
        y_val=digits.y_train[1200:],
    )
    plan = plan_fused([0.05, 0.2], [2, 2])
    _, ended = _collect(FusedWorker(data, plan, batch_size=50, shuffle=True, seed=3))
    with threadpool_limits(limits=1, user_api="blas"):
        here = train_group(data, plan, batch_size=50, shuffle=True, seed=3)
    for j, mine in enumerate(here):
        theirs = [(m.val_loss, m.val_error) for m in ended[j].history]
        assert theirs == [(m.val_loss, m.val_error) for m in mine.history]
        assert all(loss is not None for loss, _ in theirs)


def test_a_diverging_job_fails_alone_in_the_worker(digits: Dataset) -> None:
    big = Dataset("big", digits.X_train * 1e4, digits.y_train, digits.X_test, digits.y_test, "", "")
    worker = FusedWorker(
        big, plan_fused([1e-9, 1e30], [3, 3]), batch_size=50, shuffle=False, seed=0
    )
    _, ended = _collect(worker)
    assert isinstance(ended[1].error, DivergenceError) and "lr=1e+30" in str(ended[1].error)
    assert ended[1].error.epoch == 1
    assert ended[0].error is None and len(ended[0].history) == 3


def test_a_failure_in_the_child_comes_back_with_its_traceback(digits: Dataset) -> None:
    worker = FusedWorker(digits, plan_fused([0.1], [2]), batch_size=0, shuffle=False, seed=0)
    with pytest.raises(WorkerError, match="batch_size must be >= 1, got 0"):
        _collect(worker)


def test_stop_flag_kills_the_child_and_raises_keyboard_interrupt(digits: Dataset) -> None:
    worker = FusedWorker(digits, plan_fused([0.1], [10_000]), batch_size=50, shuffle=False, seed=0)
    stop = threading.Event()
    seen = 0
    with pytest.raises(KeyboardInterrupt):
        for _ in worker.events(stop):
            seen += 1
            if seen == 3:
                stop.set()
    assert not worker._process.is_alive() and worker._process.exitcode == -signal.SIGKILL


def test_the_child_runs_nicer_ignores_ctrl_c_and_is_reported_dead(digits: Dataset) -> None:
    worker = FusedWorker(digits, plan_fused([0.1], [10_000]), batch_size=50, shuffle=False, seed=0)
    events = worker.events()
    next(events)
    assert worker._process.pid is not None
    blocked = int(_status(worker._process.pid)["SigBlk"], 16)  # the parent blocked them to fork
    assert not blocked & (1 << (signal.SIGINT - 1) | 1 << (signal.SIGTERM - 1))
    assert not signal.pthread_sigmask(signal.SIG_BLOCK, set()) & {signal.SIGINT, signal.SIGTERM}
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, worker._process.pid) == min(19, mine + NICENESS)
    os.kill(worker._process.pid, signal.SIGINT)  # the terminal's Ctrl-C: the parent decides
    for _ in range(3):
        next(events)
    assert worker._process.is_alive()
    os.kill(worker._process.pid, signal.SIGKILL)  # e.g. the kernel's OOM killer
    with pytest.raises(WorkerError, match="died") as killed:
        for _ in events:
            pass
    assert not isinstance(killed.value, WorkerStoppedError), "SIGKILL is a failure, not a stop"


def test_sigterm_ends_the_child_even_if_the_parent_handles_it(digits: Dataset) -> None:
    """The CLI turns SIGTERM into KeyboardInterrupt; a forked child must not inherit that (it
    would print a traceback and linger instead of ending)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        worker = FusedWorker(
            digits, plan_fused([0.1], [10_000]), batch_size=50, shuffle=False, seed=0
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    events = worker.events()
    next(events)
    assert worker._process.pid is not None
    os.kill(worker._process.pid, signal.SIGTERM)
    with pytest.raises(
        WorkerStoppedError, match=f"stopped by SIGTERM \\(exit code {-signal.SIGTERM}\\)"
    ):
        for _ in events:
            pass
