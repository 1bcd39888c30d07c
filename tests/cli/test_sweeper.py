"""The sweeper's own pieces, without running a sweep."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from softmax_lab.cli.sweeper import bookkeeping_overrides


@pytest.mark.parametrize("sweep_id", ["1234e567", "12345678", "0e123456", "inf", "nan", "true"])
def test_bookkeeping_overrides_keep_ids_that_look_like_numbers_as_text(sweep_id: str) -> None:
    parent = "1" * 31 + "e"  # a run id can look like a number too
    parsed = OverridesParser.create().parse_overrides(bookkeeping_overrides(parent, sweep_id))
    assert {o.key_or_group: o.value() for o in parsed} == {
        "tracking.parent_run_id": parent,
        "tracking.sweep_id": sweep_id,
    }
