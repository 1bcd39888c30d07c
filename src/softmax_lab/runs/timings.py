"""Where a process spends its time, by phase, for ``benchmarks/sweep.py``.

``with phase("training"):`` adds the block's wall time to that phase, minus the time spent in
phases nested inside it (so per-epoch logging inside training counts as logging). Totals are
written as JSON at exit when ``SOFTMAX_LAB_TIMINGS=PATH`` is set; otherwise nothing is kept
but a few floats.

Fused groups are recorded by worker threads (and trained in child processes, or in those
threads when no child could start) while the main thread times the whole parallel section as
``training``. So a worker thread's own ``training`` is not added (it would count the same wall
time twice), and the time a worker spends in any other phase (logging its epochs) is added to
that phase *and* taken off ``training``, as if nothing else ran meanwhile: the training figure
is never flattered by work done in parallel with it. Marks (``mark``) place events on the
machine's monotonic clock, which child processes share: ``benchmarks/sweep.py`` draws the
fused sweep's timeline from them.
"""

from __future__ import annotations

import json
import os
import resource
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["dump", "mark", "phase", "totals"]

_clock = time.perf_counter  # one name, so tests can stop the clock
_totals: defaultdict[str, float] = defaultdict(float)
_marks: dict[str, float] = {}
_local = threading.local()  # .stack per thread: [start, time spent in nested phases] per phase
_lock = threading.Lock()
_worker_non_training = [0.0]  # seconds worker threads spent outside "training" phases


def _stack() -> list[list[float]]:
    if not hasattr(_local, "stack"):
        _local.stack = []
    stack: list[list[float]] = _local.stack
    return stack


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time a block as ``name``, exclusive of nested phases."""
    stack = _stack()
    stack.append([_clock(), 0.0])
    try:
        yield
    finally:
        start, nested = stack.pop()
        elapsed = _clock() - start
        own = elapsed - nested
        in_worker = threading.current_thread() is not threading.main_thread()
        with _lock:
            if not in_worker:
                _totals[name] += own
            elif name != "training":
                _totals[name] += own
                _worker_non_training[0] += own
        if stack:
            stack[-1][1] += elapsed


def mark(name: str, *, latest: bool = False, at: float | None = None) -> None:
    """Remember when something first happened (seconds on the perf_counter clock); with
    ``latest``, when it last happened. ``at``: a time read earlier, or in another process of
    this machine (``perf_counter`` is the system's monotonic clock), instead of now."""
    when = _clock() if at is None else at
    with _lock:
        if latest:
            _marks[name] = max(_marks.get(name, when), when)
        else:
            _marks[name] = min(_marks.get(name, when), when)


def totals() -> dict[str, float]:
    with _lock:
        out = dict(_totals)
        if _worker_non_training[0]:
            out["training"] = out.get("training", 0.0) - _worker_non_training[0]
    return out


def dump() -> None:
    """Write the phase totals and marks to ``$SOFTMAX_LAB_TIMINGS``, if set."""
    path = os.environ.get("SOFTMAX_LAB_TIMINGS")
    if path:
        now = _clock()
        marks = {k: now - v for k, v in _marks.items()}  # seconds before the dump
        # and the clock readings themselves: perf_counter is the machine's monotonic clock,
        # so a parent process can place them on its own timeline
        at = {**_marks, "dump": now}
        # CPU seconds (user + system) of this process and of its reaped children (workers)
        own, kids = (
            resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
        cpu = {"self": own.ru_utime + own.ru_stime, "children": kids.ru_utime + kids.ru_stime}
        record = {"phases": totals(), "before_end": marks, "at": at, "cpu": cpu}
        Path(path).write_text(json.dumps(record))
