"""Where a process spends its time, by phase, for ``benchmarks/sweep.py``.

``with phase("training"):`` adds the block's wall time to that phase, minus the time spent in
phases nested inside it (so per-epoch logging inside training counts as logging). Totals are
written as JSON at exit when ``SOFTMAX_LAB_TIMINGS=PATH`` is set; otherwise nothing is kept
but a few floats.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["dump", "mark", "phase", "totals"]

_totals: defaultdict[str, float] = defaultdict(float)
_marks: dict[str, float] = {}
_stack: list[list[float]] = []  # per open phase: [start, time spent in nested phases]


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time a block as ``name``, exclusive of nested phases."""
    _stack.append([time.perf_counter(), 0.0])
    try:
        yield
    finally:
        start, nested = _stack.pop()
        elapsed = time.perf_counter() - start
        _totals[name] += elapsed - nested
        if _stack:
            _stack[-1][1] += elapsed


def mark(name: str) -> None:
    """Remember when something happened (seconds on the perf_counter clock), once."""
    _marks.setdefault(name, time.perf_counter())


def totals() -> dict[str, float]:
    return dict(_totals)


def dump() -> None:
    """Write the phase totals and marks to ``$SOFTMAX_LAB_TIMINGS``, if set."""
    path = os.environ.get("SOFTMAX_LAB_TIMINGS")
    if path:
        now = time.perf_counter()
        marks = {k: now - v for k, v in _marks.items()}  # seconds before the dump
        Path(path).write_text(json.dumps({"phases": totals(), "before_end": marks}))
