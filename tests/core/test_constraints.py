"""Parameter constraints: what each accepts at its boundaries, and how it words a broken rule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from softmax_lab.core.constraints import (
    ExistingDirectory,
    Interval,
    NonEmptyString,
    OneOf,
    Required,
    check_params,
    problem,
)
from softmax_lab.errors import ConfigError, DatasetError, InputError


@pytest.mark.parametrize(
    ("closed", "accepted", "rejected"),
    [
        ("left", [0, 1, 9], [-1, 10]),
        ("right", [1, 9, 10], [0, -1]),
        ("both", [0, 5, 10], [-1, 11]),
        ("neither", [1, 9], [0, 10]),
    ],
)
def test_int_interval_boundaries_follow_closed(
    closed: str, accepted: list[int], rejected: list[int]
) -> None:
    interval = Interval(int, 0, 10, closed=closed)  # type: ignore[arg-type]
    assert all(interval.is_satisfied_by(v) for v in accepted)
    assert not any(interval.is_satisfied_by(v) for v in rejected)


def test_int_interval_takes_numpy_integers_but_not_bool_or_floats() -> None:
    at_least_one = Interval(int, 1, None, closed="left")
    assert at_least_one.is_satisfied_by(np.int64(3)) and at_least_one.is_satisfied_by(10**400)
    for value in [True, 1.0, 1.5, "3", None, np.float32(2)]:
        assert not at_least_one.is_satisfied_by(value), value


def test_float_interval_rejects_nan_and_infinities() -> None:
    positive = Interval(float, 0, None, closed="neither")
    assert positive.is_satisfied_by(1e-12) and positive.is_satisfied_by(np.float32(0.5))
    assert positive.is_satisfied_by(3)  # an int is a real number
    for value in [0, 0.0, -1e-12, math.nan, math.inf, -math.inf, 10**400, True, "0.1", None]:
        assert not positive.is_satisfied_by(value), value


@pytest.mark.parametrize(
    ("interval", "text"),
    [
        (Interval(int, 1, None, closed="left"), "must be >= 1"),
        (Interval(int, 0, None, closed="neither"), "must be > 0"),
        (Interval(int, None, 5, closed="right"), "must be <= 5"),
        (Interval(int, None, 5, closed="neither"), "must be < 5"),
        (Interval(float, 0, None, closed="neither"), "must be > 0 and finite"),
        (Interval(float, None, None, closed="neither"), "must be finite"),
        (Interval(float, 0, 1, closed="left"), "must be in [0, 1)"),
        (Interval(int, 0, 1, closed="both"), "must be in [0, 1]"),
    ],
)
def test_interval_describes_its_bounds(interval: Interval, text: str) -> None:
    assert interval.describe(-100) == text


def test_interval_names_the_kind_of_number_for_a_value_of_another_type() -> None:
    assert Interval(int, 1, None, closed="left").describe(1.5) == "must be an int >= 1"
    assert Interval(int, 1, None, closed="left").describe(True) == "must be an int >= 1"
    lr = Interval(float, 0, None, closed="neither")
    assert lr.describe("0.1") == "must be a real number > 0 and finite"
    assert Interval(int, None, None, closed="both").describe("x") == "must be an int"


def test_interval_rejects_a_malformed_definition() -> None:
    with pytest.raises(ValueError, match="low must be <= high"):
        Interval(int, 2, 1, closed="both")
    with pytest.raises(ValueError, match="closed must be one of"):
        Interval(int, 0, 1, closed="open")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="kind must be int or float"):
        Interval(complex, 0, 1, closed="both")  # type: ignore[arg-type]


def test_one_of_compares_type_and_value() -> None:
    names = OneOf(("softmax", "mlp"))
    assert names.is_satisfied_by("mlp")
    assert not names.is_satisfied_by("cnn") and not names.is_satisfied_by(None)
    assert not OneOf((1, 2)).is_satisfied_by(True), "True == 1, but it is not the option 1"
    assert names.describe("cnn") == "must be one of softmax, mlp"
    assert OneOf(("sgd",)).describe("adam") == "must be 'sgd'"


def test_required_rejects_none_and_the_empty_string() -> None:
    assert Required().is_satisfied_by("x") and Required().is_satisfied_by(0)
    assert not Required().is_satisfied_by(None) and not Required().is_satisfied_by("")
    assert Required().describe(None) == "must be set"
    assert Required("for dataset=idx").describe(None) == "must be set for dataset=idx"


def test_non_empty_string_wants_a_str() -> None:
    name = NonEmptyString("name")
    assert name.is_satisfied_by("softmax-lab")
    assert not any(name.is_satisfied_by(v) for v in ["", None, 3])
    assert name.describe("") == "must be a non-empty name"


def test_existing_directory_expands_home_and_rejects_files_and_missing_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "data").mkdir()
    (tmp_path / "file").write_text("")
    directory = ExistingDirectory()
    assert directory.is_satisfied_by(str(tmp_path)) and directory.is_satisfied_by(tmp_path)
    assert directory.is_satisfied_by("~/data")
    for value in [str(tmp_path / "missing"), str(tmp_path / "file"), "", None, 3]:
        assert not directory.is_satisfied_by(value), value
    assert directory.describe("x") == "must be an existing directory"


def test_problem_names_key_rule_and_value_repr() -> None:
    at_least_one = Interval(int, 1, None, closed="left")
    assert problem("batch_size", at_least_one, 0) == "batch_size must be >= 1, got 0"
    assert problem("batch_size", at_least_one, "2") == "batch_size must be an int >= 1, got '2'"
    assert problem("batch_size", at_least_one, 1) is None


def test_check_params_reports_every_broken_parameter_as_config_error() -> None:
    rules = {
        "lr": Interval(float, 0, None, closed="neither"),
        "epochs": Interval(int, 1, None, closed="left"),
    }
    check_params(rules, lr=0.1, epochs=1)
    with pytest.raises(ConfigError) as info:
        check_params(rules, lr=math.nan, epochs=0)
    assert str(info.value) == "lr must be > 0 and finite, got nan; epochs must be >= 1, got 0"
    assert isinstance(info.value, ValueError) and isinstance(info.value, InputError)


def test_check_params_raises_the_error_the_caller_names() -> None:
    with pytest.raises(DatasetError, match=r"^split_seed must be >= 0, got -1$"):
        check_params(
            {"split_seed": Interval(int, 0, None, closed="left")}, error=DatasetError, split_seed=-1
        )
