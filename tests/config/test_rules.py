"""The config rules table: validate enforces every row, naming key, rule and value."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from softmax_lab.config.rules import RULES, Rule, lookup
from softmax_lab.config.schema import (
    Config,
    DatasetConfig,
    ModelConfig,
    OptimConfig,
    TrackingConfig,
    validate,
)
from softmax_lab.core.constraints import (
    Constraint,
    ExistingDirectory,
    Interval,
    NonEmptyString,
    OneOf,
    Required,
    Unset,
)
from softmax_lab.errors import ConfigError


def _set(cfg: Config, key: str, value: object) -> None:
    group, _, name = key.rpartition(".")
    setattr(lookup(cfg, group) if group else cfg, name, value)


def _outside(interval: Interval) -> list[object]:
    """The nearest values just outside each bound, of the interval's own kind."""
    step = 1 if interval.kind is int else 0.5
    values: list[object] = []
    if interval.low is not None:
        left_closed = interval.closed in ("left", "both")
        values.append(interval.low - step if left_closed else interval.low)
    if interval.high is not None:
        right_closed = interval.closed in ("right", "both")
        values.append(interval.high + step if right_closed else interval.high)
    if interval.kind is float:
        values += [math.nan, math.inf, -math.inf]
    else:
        values.append(True)  # counts as 1 in Python, but is not an int here
    return values


def invalid_values(constraint: Constraint) -> list[object]:
    """Values that break ``constraint``; none for a kind of constraint not known here, which
    ``test_every_rule_has_bad_examples_that_break_it`` then fails: no row goes untested."""
    match constraint:
        case Interval():
            return _outside(constraint)
        case OneOf(values=values):
            return [f"no-such-{values[0]}", ""]
        case Required():
            return [None, ""]
        case ExistingDirectory():
            return [str(Path(__file__) / "missing"), __file__]  # nothing below a file; a file
        case NonEmptyString():
            return [""]
        case Unset():
            return [str(Path(__file__).parent)]
    return []


def _row_id(rule: Rule) -> str:
    return f"{rule.key}-{type(rule.constraint).__name__}"


def _value_id(value: object) -> str:
    return f".../{Path(value).name}" if isinstance(value, str) and "/" in value else repr(value)


BROKEN = [(rule, bad) for rule in RULES for bad in invalid_values(rule.constraint)]


@pytest.mark.parametrize(
    ("rule", "bad"), BROKEN, ids=[f"{_row_id(rule)}={_value_id(bad)}" for rule, bad in BROKEN]
)
def test_validate_reports_each_broken_rule_by_key_rule_and_value(rule: Rule, bad: object) -> None:
    cfg = Config()
    if rule.when is not None and not rule.when.holds(cfg):
        _set(cfg, rule.when.key, rule.when.value)
    _set(cfg, rule.key, bad)
    message = f"{rule.key} {rule.constraint.describe(bad)}, got {bad!r}"
    with pytest.raises(ConfigError, match=f"^invalid config: {re.escape(message)}$"):
        validate(cfg)


@pytest.mark.parametrize("rule", RULES, ids=_row_id)
def test_every_rule_has_bad_examples_that_break_it(rule: Rule) -> None:
    values = invalid_values(rule.constraint)
    assert values, f"{_row_id(rule)}: add values that break {rule.constraint!r} to invalid_values"
    assert not any(rule.constraint.is_satisfied_by(v) for v in values)


@pytest.mark.parametrize("rule", RULES, ids=_row_id)
def test_every_rule_names_a_key_of_the_config(rule: Rule) -> None:
    lookup(Config(), rule.key)  # AttributeError for a typo
    if rule.when is not None:
        lookup(Config(), rule.when.key)


def test_default_config_is_valid() -> None:
    cfg = Config()
    assert validate(cfg) is cfg


def test_every_broken_key_is_reported_at_once_in_table_order() -> None:
    cfg = Config(
        DatasetConfig(name="cifar", split_seed=-1),
        ModelConfig(name="cnn", hidden_dim=0),
        OptimConfig(name="adam", lr=-1.0, batch_size=0, epochs=0),
        TrackingConfig(experiment=""),
        seed=-3,
    )
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    assert str(info.value) == (
        "invalid config:\n"
        "  dataset.name must be one of mnist, fashion_mnist, mnist_5k, idx, got 'cifar'\n"
        "  dataset.split_seed must be >= 0, got -1\n"
        "  model.name must be one of softmax, mlp, got 'cnn'\n"
        "  model.hidden_dim must be >= 1, got 0\n"
        "  optim.name must be 'sgd', got 'adam'\n"
        "  optim.lr must be > 0 and finite, got -1.0\n"
        "  optim.batch_size must be >= 1, got 0\n"
        "  optim.epochs must be >= 1, got 0\n"
        "  seed must be >= 0, got -3\n"
        "  tracking.experiment must be a non-empty name, got ''"
    )


def test_dataset_path_is_checked_only_for_idx(tmp_path: Path) -> None:
    validate(Config(DatasetConfig(name="mnist_5k", path=None)))
    validate(Config(DatasetConfig(name="idx", path=str(tmp_path))))


def test_unset_idx_path_is_reported_once_as_unset() -> None:
    with pytest.raises(ConfigError) as info:
        validate(Config(DatasetConfig(name="idx"), optim=OptimConfig(lr=0.0)))
    assert str(info.value) == (
        "invalid config:\n"
        "  dataset.path must be set for dataset=idx, got None\n"
        "  optim.lr must be > 0 and finite, got 0.0"
    )


def test_idx_path_that_is_not_a_directory_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(ConfigError) as info:
        validate(Config(DatasetConfig(name="idx", path=missing)))
    assert str(info.value) == (
        f"invalid config: dataset.path must be an existing directory, got {missing!r}"
    )


def test_a_path_given_to_a_dataset_that_finds_its_own_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        validate(Config(DatasetConfig(name="mnist_5k", path=str(tmp_path))))
    assert str(info.value) == (
        "invalid config: dataset.path must be unset unless dataset=idx (the other datasets "
        f"find their files), got {str(tmp_path)!r}"
    )
