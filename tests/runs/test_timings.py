"""Phase timers: nesting, and the accounting of phases run in worker threads (on a fake clock,
so every figure is exact)."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from softmax_lab.runs import timings


class Clock:
    """A perf_counter that only moves when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(timings, "_clock", fake)
    monkeypatch.setattr(timings, "_totals", defaultdict(float))
    monkeypatch.setattr(timings, "_marks", {})
    monkeypatch.setattr(timings, "_worker_non_training", [0.0])
    yield fake


def test_a_nested_phase_is_taken_off_its_parent(clock: Clock) -> None:
    with timings.phase("training"):
        clock.advance(0.05)
        with timings.phase("logging"):
            clock.advance(0.1)
    assert timings.totals() == pytest.approx({"training": 0.05, "logging": 0.1})


def test_worker_training_is_not_counted_twice_and_worker_logging_comes_off_training(
    clock: Clock,
) -> None:
    def worker() -> None:
        with timings.phase("training"):
            clock.advance(0.05)
            with timings.phase("logging"):
                clock.advance(0.1)

    with timings.phase("training"):  # the main thread times the parallel section's wall time
        for _ in range(2):
            t = threading.Thread(target=worker)
            t.start()
            t.join()
    # wall 0.3 s, minus both workers' 0.2 s of logging as if it had not overlapped; the
    # workers' own 0.1 s of training is inside the main thread's wall time, not added again
    assert timings.totals() == pytest.approx({"training": 0.1, "logging": 0.2})


def test_dump_writes_phases_and_marks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    out = tmp_path / "t.json"
    monkeypatch.setenv("SOFTMAX_LAB_TIMINGS", str(out))
    timings.mark("first_job")
    with timings.phase("data"):
        clock.advance(0.5)
    clock.advance(1.0)
    timings.dump()
    record = json.loads(out.read_text())
    cpu = record.pop("cpu")
    assert cpu["self"] > 0 and cpu["children"] >= 0  # this process has run; maybe no children
    assert record == {
        "phases": {"data": 0.5},
        "before_end": {"first_job": 1.5},
        "at": {"first_job": 100.0, "dump": 101.5},
    }


def test_marks_keep_the_first_or_the_latest_time(clock: Clock) -> None:
    timings.mark("start")
    timings.mark("done", latest=True)
    clock.advance(2.0)
    timings.mark("start")  # later: the first is kept
    timings.mark("done", latest=True)
    timings.mark("done", latest=True, at=clock.now - 1.0)  # earlier: the latest is kept
    timings.mark("start", at=clock.now - 3.0)  # a time from before: now the first
    assert timings._marks == {"start": clock.now - 3.0, "done": clock.now}
