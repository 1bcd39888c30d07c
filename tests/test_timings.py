"""Phase timers: nesting, and the accounting of phases run in worker threads."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from softmax_lab import timings


@pytest.fixture(autouse=True)
def fresh_totals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from collections import defaultdict

    monkeypatch.setattr(timings, "_totals", defaultdict(float))
    monkeypatch.setattr(timings, "_marks", {})
    monkeypatch.setattr(timings, "_worker_non_training", [0.0])
    yield


def test_a_nested_phase_is_taken_off_its_parent() -> None:
    with timings.phase("training"):
        time.sleep(0.05)
        with timings.phase("logging"):
            time.sleep(0.1)
    got = timings.totals()
    assert 0.09 <= got["logging"] < 0.2
    assert 0.04 <= got["training"] < 0.09  # 0.15 s in all, minus the 0.1 s of logging


def test_worker_training_is_not_counted_twice_and_worker_logging_comes_off_training() -> None:
    def worker() -> None:
        with timings.phase("training"):
            time.sleep(0.05)
            with timings.phase("logging"):
                time.sleep(0.1)

    with timings.phase("training"):  # the main thread times the parallel section's wall time
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    got = timings.totals()
    assert 0.19 <= got["logging"] < 0.3  # both workers' logging
    # wall ≈ 0.15 s; minus 0.2 s of worker logging, as if it had not overlapped: ≤ 0
    assert got["training"] < 0.0


def test_dump_writes_phases_and_marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "t.json"
    monkeypatch.setenv("SOFTMAX_LAB_TIMINGS", str(out))
    timings.mark("first_job")
    with timings.phase("data"):
        pass
    timings.dump()
    record = json.loads(out.read_text())
    assert set(record) == {"phases", "before_end"}
    assert "data" in record["phases"] and record["before_end"]["first_job"] >= 0
