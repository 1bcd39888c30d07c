"""softmax_lab.review.rerun_plan: ``--set`` parsing and environment warnings (pure)."""

from __future__ import annotations

import pytest

from softmax_lab.config.schema import Config
from softmax_lab.errors import RerunError
from softmax_lab.review.rerun_plan import apply_sets, environment_warnings

# --- --set and environment warnings (pure) ----------------------------------------------------


def test_apply_sets_converts_by_field_type_and_reports_changes() -> None:
    cfg, changed = apply_sets(
        Config(),
        ["optim.lr=0.1", "optim.epochs=3", "optim.shuffle=true", "dataset.path=null", "seed=0"],
    )
    assert cfg.optim.lr == 0.1 and cfg.optim.epochs == 3 and cfg.optim.shuffle is True
    assert cfg.dataset.path is None and cfg.seed == 0
    assert changed == {"optim.lr": 0.1, "optim.epochs": 3, "optim.shuffle": True}
    assert Config().optim.lr == 0.2  # a copy: the defaults are untouched


def test_apply_sets_rejects_unknown_key_naming_the_valid_ones() -> None:
    with pytest.raises(RerunError, match=r"unknown key 'optim\.lrr'; valid keys: .*optim\.lr, "):
        apply_sets(Config(), ["optim.lrr=1"])


def test_apply_sets_rejects_tracking_keys() -> None:
    with pytest.raises(RerunError, match=r"unknown key 'tracking\.uri'"):
        apply_sets(Config(), ["tracking.uri=sqlite:///x.db"])


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("optim.lr", r"--set expects KEY=VALUE \(e\.g\. optim\.lr=0\.1\), got 'optim\.lr'"),
        ("optim.lr=fast", r"--set optim\.lr: expected a number, got 'fast'"),
        ("optim.epochs=2.5", r"--set optim\.epochs: expected an integer, got '2\.5'"),
        ("optim.shuffle=yes", r"--set optim\.shuffle: expected true or false, got 'yes'"),
    ],
)
def test_apply_sets_rejects_bad_items(item: str, message: str) -> None:
    with pytest.raises(RerunError, match=message):
        apply_sets(Config(), [item])


def test_environment_warnings_name_what_differs() -> None:
    now = {
        "sl.version": "0.1.0",
        "sl.git_commit": "abc",
        "sl.numpy": "2.1.0",
        "sl.blas": "openblas 0.3.27",
        "sl.threads": "2",
    }
    assert environment_warnings(now, now) == []
    then = {**now, "sl.numpy": "1.26.4", "sl.threads": "8"}
    del then["sl.blas"]
    warnings = environment_warnings(then, now)
    assert "NumPy differs: original 1.26.4, now 2.1.0" in warnings
    assert "BLAS thread count differs: original 8, now 2" in warnings
    assert "BLAS: not recorded by the original run (now openblas 0.3.27)" in warnings
    dirty = {**now, "sl.git_commit": "abc-dirty"}
    (warning,) = environment_warnings(dirty, dirty)
    assert "uncommitted changes" in warning
