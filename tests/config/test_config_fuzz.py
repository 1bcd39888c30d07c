"""Property-based tests of the config boundary: whatever the dict, only ``ConfigError``.

A config reaches the layers below the CLI from Hydra (typed by the schema) or from a logged
``config.yaml`` (``rerun``), which anyone can edit. Random nested dicts — known keys with values
of any type, unknown keys, groups that are not mappings — either build a ``Config`` that passes
every rule, or raise ``ConfigError`` naming the key; never another exception, never a hang.
The fields are read from the dataclasses, so a key added to the schema is fuzzed too.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softmax_lab.config.schema import Config, config_from_dict, config_hash, flatten, validate
from softmax_lab.errors import ConfigError

FUZZ = settings(max_examples=300, deadline=1000)  # ms per example: a hang is a failure

GROUPS = {
    f.name: f.default_factory()  # type: ignore[misc]
    for f in dataclasses.fields(Config)
    if f.default_factory is not dataclasses.MISSING
}
TOP_LEVEL = [f.name for f in dataclasses.fields(Config) if f.name not in GROUPS]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _plausible(field: dataclasses.Field[Any]) -> st.SearchStrategy[Any]:
    """Values near the field's domain (its default, edges) mixed with anything at all."""
    default = field.default
    near: list[Any] = [default, 0, -1, 1, 2**31, 0.0, -0.5, 1e-300, math.inf, math.nan, ""]
    return st.one_of(st.sampled_from(near), values)


def _group(name: str) -> st.SearchStrategy[Any]:
    fields = dataclasses.fields(GROUPS[name])
    known = st.fixed_dictionaries({}, optional={f.name: _plausible(f) for f in fields})
    unknown = st.dictionaries(st.text(max_size=8), values, max_size=2)
    return st.one_of(known, known.flatmap(lambda d: unknown.map(lambda u: {**u, **d})), values)


configs = st.fixed_dictionaries(
    {},
    optional={
        **{name: _group(name) for name in GROUPS},
        **{name: values for name in TOP_LEVEL},
    },
).flatmap(
    lambda d: st.dictionaries(st.text(max_size=8), values, max_size=1).map(
        lambda extra: {**extra, **d}
    )
)


@FUZZ
@given(configs)
def test_any_config_dict_is_a_valid_config_or_a_config_error(d: dict[str, Any]) -> None:
    try:
        cfg = validate(config_from_dict(d))
    except ConfigError as e:
        assert str(e), "a ConfigError must say what is wrong"
        return
    # accepted: the rules' promises hold, and what every run does with a config works
    assert isinstance(cfg.optim.lr, float) and cfg.optim.lr > 0 and math.isfinite(cfg.optim.lr)
    assert isinstance(cfg.optim.batch_size, int) and cfg.optim.batch_size >= 1
    assert isinstance(cfg.optim.epochs, int) and cfg.optim.epochs >= 1
    assert isinstance(cfg.seed, int) and not isinstance(cfg.seed, bool) and cfg.seed >= 0
    flat = flatten(cfg)
    assert len(config_hash(cfg, "fingerprint")) == 64
    assert all(isinstance(k, str) for k in flat)


@FUZZ
@given(st.data())
def test_any_field_value_set_directly_is_accepted_or_named(data: st.DataObject) -> None:
    """``validate`` on a dataclass built in Python (a notebook), any value in any field."""
    cfg = Config()
    group = data.draw(st.sampled_from(sorted(GROUPS)))
    field = data.draw(st.sampled_from(dataclasses.fields(getattr(cfg, group))))
    value = data.draw(_plausible(field))
    setattr(getattr(cfg, group), field.name, value)
    try:
        validate(cfg)
    except ConfigError as e:
        assert f"{group}.{field.name}" in str(e)


# what the fuzzer found before config_from_dict checked shapes and types (TypeErrors then)
@pytest.mark.parametrize(
    ("d", "message"),
    [
        ({"dataset": None}, "dataset must be a mapping of its keys, got None"),
        ({"optim": [1, 2]}, "optim must be a mapping of its keys, got [1, 2]"),
        ({"optim": {"lr": "0.1"}}, "optim.lr must be float, got '0.1'"),
        ({"optim": {"epochs": 2.5}}, "optim.epochs must be int, got 2.5"),
        ({"optim": {"shuffle": 1}}, "optim.shuffle must be bool, got 1"),
        ({"seed": True}, "seed must be int, got True"),
        ({"dataset": {"path": 3}}, "dataset.path must be str or None, got 3"),
        ({"optim": {"lrr": 1}}, "unknown keys in optim: lrr"),
        ({"seeds": 1}, "unknown config key 'seeds'"),
    ],
)
def test_config_dict_of_the_wrong_shape_or_type_names_the_key(
    d: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        config_from_dict(d)


def test_an_int_for_a_float_key_becomes_a_float_as_hydra_makes_it() -> None:
    cfg = config_from_dict({"optim": {"lr": 1}})
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
