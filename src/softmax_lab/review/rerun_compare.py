"""Compare a rerun with its original: every per-epoch metric exactly, every parameter by SHA-256.

``compare_records`` compares two ``RunRecord`` (what a run logged, as read back from the store),
``verdict`` names the outcome, ``format_differences`` gives the report's lines. All pure: the
records are read, and the rerun run, by ``review.rerun``. ``epoch_seconds`` is wall time:
it is reported, never compared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from softmax_lab.tracking import recorder

__all__ = [
    "REPRODUCED",
    "Comparison",
    "Difference",
    "ParamCheck",
    "RunRecord",
    "compare_records",
    "format_differences",
    "verdict",
]

REPRODUCED, DIFFERS, CHANGED = "reproduced exactly", "differs", "changed (--set)"
TIMING = "epoch_seconds"  # wall time: shown, never part of the verdict
COMPARED = tuple(k for k in recorder.METRIC_KEYS if k != TIMING)


# --- comparing two runs (pure) ----------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    """What a comparison needs of one run, as read back from the store.

    ``history`` maps a metric key to its ``(epoch, value)`` points; ``hashes`` maps a parameter
    name (``theta``, ``W1``, …) to the hex SHA-256 of its array.
    """

    status: str
    history: Mapping[str, Sequence[tuple[int, float]]]
    hashes: Mapping[str, str]


@dataclass(frozen=True)
class Difference:
    """One per-epoch value that is not bit-for-bit equal; None where a run has no such epoch."""

    metric: str
    epoch: int
    original: float | None
    rerun: float | None


@dataclass(frozen=True)
class ParamCheck:
    """SHA-256 of one parameter array in both runs; None where a run did not log it."""

    name: str
    original: str | None
    rerun: str | None

    @property
    def match(self) -> bool:
        return self.original is not None and self.original == self.rerun


@dataclass(frozen=True)
class Comparison:
    """Everything that differs between an original run and its rerun."""

    differences: list[Difference]
    params: list[ParamCheck]
    status: tuple[str, str]  # (original, rerun)
    compared: int  # per-epoch values compared (epoch_seconds excluded)
    seconds: tuple[float, float]  # total epoch_seconds (original, rerun): timing, not compared

    @property
    def identical(self) -> bool:
        same_status = self.status[0] == self.status[1]
        return same_status and not self.differences and all(p.match for p in self.params)


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def compare_records(original: RunRecord, rerun: RunRecord) -> Comparison:
    """Compare every per-epoch metric for exact equality and every parameter array by hash.

    ``epoch_seconds`` is only summed into ``Comparison.seconds``. An epoch that one run has and
    the other lacks (a run that stopped early) is a difference with None on the missing side;
    so is a parameter array that only one run logged.
    """
    differences = []
    compared = 0
    for metric in COMPARED:
        a = dict(original.history.get(metric, ()))
        b = dict(rerun.history.get(metric, ()))
        for epoch in sorted(a.keys() | b.keys()):
            compared += 1
            if not _same(a.get(epoch), b.get(epoch)):
                differences.append(Difference(metric, epoch, a.get(epoch), b.get(epoch)))
    names = sorted(original.hashes.keys() | rerun.hashes.keys())
    params = [ParamCheck(n, original.hashes.get(n), rerun.hashes.get(n)) for n in names]
    seconds = (
        sum(v for _, v in original.history.get(TIMING, ())),
        sum(v for _, v in rerun.history.get(TIMING, ())),
    )
    return Comparison(differences, params, (original.status, rerun.status), compared, seconds)


def verdict(comparison: Comparison, *, changed: bool) -> str:
    """``changed (--set)`` for a deliberately changed config, else exact or ``differs``."""
    if changed:
        return CHANGED
    return REPRODUCED if comparison.identical else DIFFERS


def _value(v: float | None) -> str:
    return "—" if v is None else repr(v)  # repr: the shortest text that round-trips exactly


def format_differences(comparison: Comparison, *, limit: int = 20) -> list[str]:
    """The report's lines: status, differing values as a table (at most ``limit`` rows), params.

    Values are printed with ``repr`` so that a difference in the last bit is visible.
    """
    lines = []
    if comparison.status[0] != comparison.status[1]:
        lines.append(f"status: original {comparison.status[0]}, rerun {comparison.status[1]}")
    elif comparison.status[0] != "FINISHED":
        lines.append(f"status: {comparison.status[0]} in both")
    diffs = comparison.differences
    if diffs:
        rows = [("metric", "epoch", "original", "rerun", "rerun - original")]
        for d in diffs[:limit]:
            delta = "" if d.original is None or d.rerun is None else f"{d.rerun - d.original:+.3g}"
            rows.append((d.metric, str(d.epoch), _value(d.original), _value(d.rerun), delta))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        cells = [[c.ljust(w) for c, w in zip(r, widths, strict=True)] for r in rows]
        lines.append("| " + " | ".join(cells[0]) + " |")
        lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        lines.extend("| " + " | ".join(c) + " |" for c in cells[1:])
        if len(diffs) > limit:
            lines.append(f"… and {len(diffs) - limit} more differing values")
    for p in comparison.params:
        if p.match:
            lines.append(f"{p.name}: sha256 match ({(p.original or '')[:16]}…)")
        elif p.original is None or p.rerun is None:
            missing = "original" if p.original is None else "rerun"
            lines.append(f"{p.name}: sha256 MISMATCH (not logged by the {missing})")
        else:
            lines.append(
                f"{p.name}: sha256 MISMATCH (original {p.original[:16]}…, rerun {p.rerun[:16]}…)"
            )
    a, b = comparison.seconds
    lines.append(f"{TIMING} (timing, not compared): original {a:.3f} s, rerun {b:.3f} s in total")
    return lines
