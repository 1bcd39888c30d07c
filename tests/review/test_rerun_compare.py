"""review.rerun_compare: per-epoch metrics, parameter hashes, verdicts and report lines."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_lab.review.rerun_compare import RunRecord, compare_records, format_differences, verdict

# --- the comparison (pure) --------------------------------------------------------------------


def _record(
    *,
    train_loss: tuple[float, ...] = (0.5, 0.4, 0.3),
    seconds: tuple[float, ...] = (0.1, 0.1, 0.1),
    theta: str | None = "ab" * 32,
    status: str = "FINISHED",
) -> RunRecord:
    steps = lambda values: [(i + 1, v) for i, v in enumerate(values)]  # noqa: E731
    history = {
        "train/loss": steps(train_loss),
        "train/error": steps((0.2, 0.1, 0.05)[: len(train_loss)]),
        "test/loss": steps((0.6, 0.5, 0.4)[: len(train_loss)]),
        "test/error": steps((0.3, 0.2, 0.1)[: len(train_loss)]),
        "epoch_seconds": steps(seconds),
    }
    return RunRecord(status, history, {} if theta is None else {"theta": theta})


def test_compare_records_identical_runs_reproduce_exactly() -> None:
    c = compare_records(_record(), _record())
    assert c.identical and c.differences == [] and c.compared == 12
    assert verdict(c, changed=False) == "reproduced exactly"
    assert [p.match for p in c.params] == [True]


def test_compare_records_ignores_epoch_seconds_but_reports_it() -> None:
    c = compare_records(_record(seconds=(0.1, 0.2, 0.3)), _record(seconds=(9.0, 9.0, 9.0)))
    assert c.identical and verdict(c, changed=False) == "reproduced exactly"
    assert c.seconds == pytest.approx((0.6, 27.0))
    assert any(
        line.startswith("epoch_seconds (timing, not compared)") for line in format_differences(c)
    )


def test_compare_records_finds_a_last_bit_difference() -> None:
    nudged = float(np.nextafter(0.4, 1.0))
    c = compare_records(_record(), _record(train_loss=(0.5, nudged, 0.3)))
    assert not c.identical and verdict(c, changed=False) == "differs"
    (d,) = c.differences
    assert (d.metric, d.epoch, d.original, d.rerun) == ("train/loss", 2, 0.4, nudged)
    table = "\n".join(format_differences(c))
    assert f"| train/loss | 2     | 0.4      | {nudged!r} |" in table


def test_compare_records_reports_missing_epochs_and_params() -> None:
    c = compare_records(_record(), _record(train_loss=(0.5, 0.4), theta=None, status="FAILED"))
    assert not c.identical
    assert ("train/loss", 3, 0.3, None) in [
        (d.metric, d.epoch, d.original, d.rerun) for d in c.differences
    ]
    (p,) = c.params
    assert p.original == "ab" * 32 and p.rerun is None and not p.match
    lines = format_differences(c)
    assert "status: original FINISHED, rerun FAILED" in lines
    assert "theta: sha256 MISMATCH (not logged by the rerun)" in lines


def test_compare_records_theta_hash_alone_decides() -> None:
    c = compare_records(_record(), _record(theta="cd" * 32))
    assert c.differences == [] and not c.identical
    assert verdict(c, changed=False) == "differs"
    assert "theta: sha256 MISMATCH (original abababababababab…, rerun cdcdcdcdcdcdcdcd…)" in (
        format_differences(c)
    )


def test_compare_records_nan_equals_nan() -> None:
    nan = float("nan")
    c = compare_records(_record(train_loss=(0.5, nan, nan)), _record(train_loss=(0.5, nan, nan)))
    assert c.identical


def test_verdict_of_a_changed_config_is_changed_whatever_the_numbers() -> None:
    same = compare_records(_record(), _record())
    assert verdict(same, changed=True) == "changed (--set)"


def test_format_differences_caps_the_table() -> None:
    many = tuple(float(i) for i in range(30))
    c = compare_records(_record(train_loss=many), _record(train_loss=tuple(v + 1 for v in many)))
    lines = format_differences(c, limit=20)
    assert sum(line.startswith("| train/loss") for line in lines) == 20
    assert f"… and {len(c.differences) - 20} more differing values" in lines
