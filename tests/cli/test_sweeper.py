"""The sweeper's own pieces, without running a sweep."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from softmax_lab.cli.sweeper import bookkeeping_overrides, consecutive_stretches


@pytest.mark.parametrize("sweep_id", ["1234e567", "12345678", "0e123456", "inf", "nan", "true"])
def test_bookkeeping_overrides_keep_ids_that_look_like_numbers_as_text(sweep_id: str) -> None:
    parent = "1" * 31 + "e"  # a run id can look like a number too
    parsed = OverridesParser.create().parse_overrides(bookkeeping_overrides(parent, sweep_id))
    assert {o.key_or_group: o.value() for o in parsed} == {
        "tracking.parent_run_id": parent,
        "tracking.sweep_id": sweep_id,
    }


@pytest.mark.parametrize(
    ("nums", "stretches"),
    [
        ([], []),
        ([3], [(0, 1)]),
        ([0, 1, 2], [(0, 3)]),
        ([0, 1, 4, 5, 6, 9], [(0, 2), (2, 5), (5, 6)]),
        ([2, 4, 6], [(0, 1), (1, 2), (2, 3)]),
    ],
)
def test_consecutive_stretches_cut_where_a_number_is_skipped(
    nums: list[int], stretches: list[tuple[int, int]]
) -> None:
    """A resume launches each stretch with Hydra's initial_job_idx = its first number."""
    assert consecutive_stretches(nums) == stretches
