from __future__ import annotations

import numpy as np
import pytest

from softmax_lab.pictures import ticks


@pytest.mark.parametrize(
    ("lo", "hi", "kwargs", "expected"),
    [
        (0.31, 0.68, {"n": 8}, [0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65]),
        (-0.39, 0.39, {"n": 8}, [-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3]),
        (0.75, 6.25, {"n": 8, "integer": True}, [1, 2, 3, 4, 5, 6]),
        (0.5, 1.5, {"n": 8, "integer": True}, [1]),
        (0.0, 97.0, {"n": 5}, [0, 20, 40, 60, 80]),
    ],
)
def test_nice_ticks_are_round_steps_inside_the_range(lo, hi, kwargs, expected) -> None:
    np.testing.assert_allclose(ticks.nice_ticks(lo, hi, **kwargs), expected)


def test_format_ticks_uses_the_decimals_of_the_step_and_a_true_minus() -> None:
    assert ticks.format_ticks(np.array([-0.2, 0.0, 0.2])) == ["−0.2", "0.0", "0.2"]
    assert ticks.format_ticks(np.array([0.35, 0.4, 0.45])) == ["0.35", "0.40", "0.45"]
    assert ticks.format_ticks(np.array([1.0, 2.0])) == ["1", "2"]
    assert ticks.format_ticks(np.array([2e5, 4e5])) == ["2e+05", "4e+05"]


def test_limits_add_5_percent_margins_and_skip_non_finite_values() -> None:
    assert ticks.limits(np.array([1.0, np.nan, 3.0, np.inf])) == pytest.approx((0.9, 3.1))
    assert ticks.limits(np.array([2.0])) == pytest.approx((1.9, 2.1))
    assert ticks.limits(np.array([np.nan])) == (0.0, 1.0)


def test_fit_tick_labels_shrinks_thins_or_shortens() -> None:
    assert ticks.fit_tick_labels(["0.01", "0.1"], 100) == (["0.01", "0.1"], 14, 1)
    many = [f"{v:.3f}" for v in np.linspace(0.001, 0.02, 20)]
    labels, size, every = ticks.fit_tick_labels(many, 20, thin=True)
    assert (labels, size) == (many, 10) and every == 2  # each ~33 px wide at 10 px
    labels, size, every = ticks.fit_tick_labels(["kmnist_with_a_very_long_name"], 60)
    assert size == 10 and every == 1 and labels[0].endswith("…")
