"""The Optuna sweeper's search space: Hydra's sweep overrides to Optuna distributions and back."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import given
from hypothesis import strategies as st
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from softmax_lab.cli.search_space import (
    SearchSpace,
    describe,
    format_value,
    parse_search_space,
    trial_overrides,
)
from softmax_lab.config.schema import Config, flatten
from softmax_lab.errors import ConfigError

PARSER = OverridesParser.create()


def read_back(override: str) -> tuple[str, Any]:
    """What Hydra makes of ``override``: its key and value."""
    parsed = PARSER.parse_override(override)
    return parsed.key_or_group, parsed.value()


def same(a: Any, b: Any) -> bool:
    """Equal in value and type (``1 == 1.0 == True`` do not count)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def distribution(value: str) -> BaseDistribution:
    return parse_search_space(None, [f"optim.lr={value}"]).distributions["optim.lr"]


# --- forms ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("interval(0.001, 1)", FloatDistribution(0.001, 1.0)),
        # Hydra's interval() makes both ends floats: a float search, as in hydra-optuna-sweeper
        ("interval(1, 5)", FloatDistribution(1.0, 5.0)),
        ("int(interval(1, 5))", IntDistribution(1, 5)),
        ("float(interval(1, 5))", FloatDistribution(1.0, 5.0)),
        ("tag(log, interval(0.001, 1))", FloatDistribution(0.001, 1.0, log=True)),
        ("tag(log, int(interval(1, 100)))", IntDistribution(1, 100, log=True)),
        ("int(tag(log, interval(1, 100)))", IntDistribution(1, 100, log=True)),
        ("choice(10, 50, 100, 200)", CategoricalDistribution((10, 50, 100, 200))),
        ("10,50,100,200", CategoricalDistribution((10, 50, 100, 200))),
        ("choice(sgd, 'adam', \"rms prop\")", CategoricalDistribution(("sgd", "adam", "rms prop"))),
        ("0.1,2,x,true,null", CategoricalDistribution((0.1, 2, "x", True, None))),
        ("str(choice(1, 2))", CategoricalDistribution(("1", "2"))),
        ("sort(3, 1, 2)", CategoricalDistribution((1, 2, 3))),
        ("range(1, 21)", IntDistribution(1, 20)),
        ("range(0, 10, 3)", IntDistribution(0, 9, step=3)),
        ("range(4)", IntDistribution(0, 3)),
        ("range(0.1, 0.5, 0.1)", FloatDistribution(0.1, 0.4, step=0.1)),
        ("float(range(1, 5))", FloatDistribution(1.0, 4.0, step=1.0)),
        ("range(0, 1, 0.25)", FloatDistribution(0.0, 0.75, step=0.25)),
    ],
)
def test_parse_search_space_makes_each_form_its_distribution(
    value: str, expected: BaseDistribution
) -> None:
    got = distribution(value)
    assert got == expected
    if isinstance(expected, CategoricalDistribution):  # 1 == 1.0 == True: the types too
        assert isinstance(got, CategoricalDistribution)
        assert all(same(a, b) for a, b in zip(got.choices, expected.choices, strict=True))


def test_parse_search_space_int_interval_keeps_ints_and_float_interval_floats() -> None:
    assert isinstance(distribution("int(interval(1, 5))"), IntDistribution)
    assert isinstance(distribution("interval(1, 5)"), FloatDistribution)


@given(st.integers(-50, 50), st.integers(-50, 50), st.integers(1, 7))  # start, stop, step
def test_parse_search_space_int_range_searches_exactly_hydras_grid(
    start: int, stop: int, step: int
) -> None:
    hydra_grid = list(range(start, stop, step))
    if len(hydra_grid) < 2:
        return  # none: refused; one: fixed (tests below)
    got = distribution(f"range({start}, {stop}, {step})")
    assert isinstance(got, IntDistribution)
    assert list(range(got.low, got.high + 1, got.step)) == hydra_grid


@pytest.mark.parametrize(
    "value", ["range(0.1, 0.5, 0.1)", "range(0, 0.3, 0.1)", "range(0.5, 2, 0.25)", "range(1.5)"]
)
def test_parse_search_space_float_range_ends_at_hydras_last_value(value: str) -> None:
    override = PARSER.parse_override(f"k={value}")
    hydra_grid = list(override.sweep_iterator())
    got = distribution(value)
    assert isinstance(got, FloatDistribution) and got.step is not None
    assert got.low == hydra_grid[0]
    assert got.high == pytest.approx(hydra_grid[-1])
    assert round((got.high - got.low) / got.step) + 1 == len(hydra_grid)


@pytest.mark.parametrize(("value", "fixed"), [("choice(7)", "k=7"), ("range(3, 4)", "k=3")])
def test_parse_search_space_one_value_sweep_is_fixed(value: str, fixed: str) -> None:
    space = parse_search_space(None, [f"k={value}"])
    assert space == SearchSpace(distributions={}, fixed=[fixed])


def test_parse_search_space_keeps_plain_overrides_fixed_as_written() -> None:
    space = parse_search_space(
        {"optim.lr": "interval(0.01, 1)", "seed": 3},
        ["+experiment=demo", "dataset.val_size=10000", "model=mlp", "~optim.max_train_loss"],
    )
    assert list(space.distributions) == ["optim.lr"]
    assert space.fixed == [
        "seed=3",
        "+experiment=demo",
        "dataset.val_size=10000",
        "model=mlp",
        "~optim.max_train_loss",
    ]


def test_parse_search_space_orders_params_first_then_new_command_line_keys() -> None:
    space = parse_search_space(
        {"optim.lr": "interval(0.01, 1)", "optim.batch_size": "10,50"},
        ["optim.epochs=range(1, 5)", "optim.batch_size=50,100", "model=softmax,mlp"],
    )
    assert list(space.distributions) == ["optim.lr", "optim.batch_size", "optim.epochs", "model"]
    assert space.distributions["optim.batch_size"] == CategoricalDistribution((50, 100))


def test_parse_search_space_command_line_value_wins_over_a_searched_param(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="softmax_lab.cli.search_space"):
        space = parse_search_space({"optim.lr": "tag(log, interval(0.001, 1))"}, ["optim.lr=0.1"])
    assert space == SearchSpace(distributions={}, fixed=["optim.lr=0.1"])
    assert "optim.lr=0.1 replaces hydra.sweeper.params.optim.lr" in caplog.text


def test_parse_search_space_command_line_sweep_wins_over_a_fixed_param() -> None:
    space = parse_search_space({"optim.lr": "0.1"}, ["optim.lr=interval(0.01, 1)"])
    assert space == SearchSpace({"optim.lr": FloatDistribution(0.01, 1.0)}, [])


def test_parse_search_space_prefixed_fixed_override_replaces_the_same_key() -> None:
    space = parse_search_space({"optim.lr": "interval(0.01, 1)"}, ["++optim.lr=0.5"])
    assert space == SearchSpace(distributions={}, fixed=["++optim.lr=0.5"])


def test_parse_search_space_reads_non_string_param_values_as_hydra_would() -> None:
    space = parse_search_space({"optim.shuffle": True, "optim.max_train_loss": None}, [])
    assert space.fixed == ["optim.shuffle=true", "optim.max_train_loss=null"]


def test_parse_search_space_accepts_known_keys_their_groups_and_added_keys() -> None:
    known = list(flatten(Config()))
    space = parse_search_space(
        {"optim.lr": "interval(0.01, 1)"},
        ["model=mlp", "+experiment=demo", "optim.batch_size=10,50", "hydra.verbose=true"],
        known_keys=known,
    )
    assert list(space.distributions) == ["optim.lr", "optim.batch_size"]


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("optim.lr=interval(1, 0.5)", r"needs low < high, got interval\(1.0, 0.5\)"),
        ("optim.lr=interval(0.1, 0.1)", r"needs low < high, got interval\(0.1, 0.1\)"),
        ("optim.lr=int(interval(3, 3))", r"needs low < high, got interval\(3, 3\)"),
        ("optim.lr=interval(0, inf)", r"needs finite ends, got interval\(0.0, inf\)"),
        ("optim.lr=tag(log, interval(0, 1))", r"tag\(log, .*needs low > 0, got interval\(0.0"),
        ("optim.lr=tag(log, int(interval(-2, 5)))", r"needs low > 0, got interval\(-2, 5\)"),
        ("optim.lr=tag(logg, interval(0.1, 1))", r"unknown tag logg: .* knows log"),
        ("optim.lr=tag(log, choice(1, 2))", r"tag\(log, ...\) applies to interval.*a choice"),
        ("optim.lr=tag(log, range(1, 5))", r"tag\(log, ...\) applies to interval.*a range"),
        ("optim.lr=shuffle(1, 2, 3)", r"shuffle\(...\) has no meaning here"),
        ("optim.lr=shuffle(range(1, 5))", r"shuffle\(...\) has no meaning here"),
        ("model=glob(*)", r"glob\(...\) is not supported .* choice\(...\)"),
        ("optim.lr=range(5, 1)", r"range\(...\) has no values .* got range\(5, 1, 1\)"),
        ("optim.lr=range(1, 5, 0)", r"needs step > 0 .* got range\(1, 5, 0\)"),
        ("optim.lr=sort(range(1, 5), reverse=true)", r"needs step > 0 .*range\(4, 0, -1\)"),
        ("optim.lr=range(0, 1, 0.000001)", r"more than 100000 values.*interval\(start, stop\)"),
        ("optim.lr=choice(choice(1, 2), 3)", r"got a choice\(...\) nested in it"),
        ("optim.lr=[1,2],[3]", r"choice values must be null, bool.*got the list \[1, 2\]"),
        ("optim.lr=choice({a: 1}, 2)", r"must be null, bool.*got the dict \{'a': 1\}"),
        ("optim.lr=nan,1", r"choice values must not be nan"),
        ("optim.lr=1,1.0", r"choice values must differ, got 1 and 1.0"),
        ("optim.lr=choice(1, true)", r"choice values must differ, got 1 and true"),
        ("+optim.lr=interval(0.1, 1)", r"a searched key takes no \+ prefix.*write optim.lr="),
        ("++optim.lr=0.1,0.2", r"a searched key takes no \+\+ prefix"),
        ("~optim.lr=0.1,0.2", r"a searched key takes no ~ prefix"),
        ("optim.lr=choice()", r"Error parsing override .*empty choice is not legal"),
        ("optim.lr=interval(1,", r"no viable alternative at input 'interval\(1,'"),
        ("optim.lr=interval(a, b)", r"mismatch type argument start"),
        ("optim lr=1", r"LexerNoViableAltException: optim lr=1 \(at character 6\)"),
    ],
)
def test_parse_search_space_refuses_with_one_line_naming_the_override(
    override: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        parse_search_space(None, [override])
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"invalid config: override {override!r}: ")
    assert "https://" not in message


def test_parse_search_space_names_the_params_key() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^invalid config: hydra\.sweeper\.params\.optim\.lr: interval\(\.\.\.\) needs low",
    ):
        parse_search_space({"optim.lr": "interval(1, 0)"}, [])


def test_parse_search_space_refuses_a_nested_mapping_in_params() -> None:
    with pytest.raises(ConfigError, match=r"params\.optim: expected .* dotted key .*mapping"):
        parse_search_space({"optim": {"lr": "interval(0.1, 1)"}}, [])


def test_parse_search_space_refuses_an_unknown_key_with_the_closest_one() -> None:
    with pytest.raises(
        ConfigError, match=r"optim\.lrr is not a key of the config \(did you mean optim\.lr\?\)"
    ):
        parse_search_space(None, ["optim.lrr=interval(0.1, 1)"], known_keys=flatten(Config()))


def test_parse_search_space_checks_fixed_keys_too() -> None:
    with pytest.raises(
        ConfigError, match=r"params\.optim\.epoch: optim\.epoch is not a key .*optim\.epochs"
    ):
        parse_search_space({"optim.epoch": 5}, [], known_keys=flatten(Config()))


def test_parse_search_space_reports_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_search_space(
            {"optim.lr": "interval(1, 0)", "optim.epochs": "range(5, 1)"},
            ["model=glob(*)", "optim.batch_size=10,50"],
        )
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "hydra.sweeper.params.optim.lr",
        "hydra.sweeper.params.optim.epochs",
        "override 'model=glob(*)'",
    ]


# --- trials back to overrides --------------------------------------------------------------


def test_trial_overrides_are_fixed_then_searched_in_space_order() -> None:
    space = parse_search_space(
        {"optim.lr": "tag(log, interval(0.001, 1))", "optim.batch_size": "10,50"},
        ["+experiment=demo", "model=softmax,mlp"],
    )
    overrides = trial_overrides(space, {"model": "mlp", "optim.batch_size": 50, "optim.lr": 0.1})
    assert overrides == ["+experiment=demo", "optim.lr=0.1", "optim.batch_size=50", "model=mlp"]


@pytest.mark.parametrize(
    "choices",
    [
        "choice(10, 50, 100, 200)",
        "choice(0.1, 1e-05, 2.0, -3.5, 1e300)",
        "true,false",
        "null,0",
        "choice('1e3', '10', 'true', 'null', 'a,b', ' padded ', 'x y', 'it\\'s')",
        "choice(\"it's\", 'back\\\\slash', '${optim.lr}', 'a=b', '[1]', '')",
        "str(choice(1, 2.5, true))",
        "choice(sgd, adam)",
    ],
)
def test_trial_overrides_read_back_as_each_choice_value_and_type(choices: str) -> None:
    space = parse_search_space(None, [f"k={choices}"])
    d = space.distributions["k"]
    assert isinstance(d, CategoricalDistribution)
    for choice in d.choices:
        (override,) = trial_overrides(space, {"k": choice})
        key, value = read_back(override)
        assert key == "k"
        assert same(value, choice), (override, value, choice)


@given(st.floats())  # nan, inf and -0.0 included
def test_format_value_float_round_trips_exactly(x: float) -> None:
    assert same(read_back(f"k={format_value(x)}")[1], x)


@given(st.floats(min_value=1e-6, max_value=1e6), st.booleans())
def test_trial_overrides_float_distribution_values_round_trip(x: float, is_log: bool) -> None:
    space = parse_search_space(
        None, ["k=tag(log, interval(1e-6, 1e6))" if is_log else "k=interval(1e-6, 1e6)"]
    )
    (override,) = trial_overrides(space, {"k": x})
    assert same(read_back(override)[1], x)


@given(st.text())
def test_format_value_string_round_trips(s: str) -> None:
    assert same(read_back(f"k={format_value(s)}")[1], s)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (np.float64(0.1), "0.1"),
        (np.float32(0.5), "0.5"),
        (np.int64(7), "7"),
        (np.bool_(True), "true"),
        (float("inf"), "inf"),
        (2.0, "2.0"),
        ("1e3", "'1e3'"),
        ("sgd", "sgd"),
    ],
)
def test_format_value_writes_numpy_scalars_and_look_alikes(value: Any, text: str) -> None:
    assert format_value(value) == text


def test_trial_overrides_write_a_float_distribution_value_as_a_float() -> None:
    space = parse_search_space(None, ["k=interval(1, 5)", "n=int(interval(1, 5))"])
    assert trial_overrides(space, {"k": 2, "n": np.int64(3)}) == ["k=2.0", "n=3"]


def test_trial_overrides_refuse_missing_or_unsearched_params() -> None:
    space = parse_search_space(None, ["k=interval(1, 5)"])
    with pytest.raises(ValueError, match="missing k; not searched j"):
        trial_overrides(space, {"j": 1})


def test_trial_overrides_of_an_optuna_study_read_back_as_its_params() -> None:
    space = parse_search_space(
        {
            "optim.lr": "tag(log, interval(0.001, 1))",
            "optim.batch_size": "choice(10, 50, 100, 200)",
            "optim.epochs": "range(1, 21)",
            "optim.max_train_loss": "range(0.5, 3, 0.5)",
        },
        ["model=softmax,mlp", "optim.shuffle=true,false", "+experiment=demo"],
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask(space.distributions)
        overrides = trial_overrides(space, trial.params)
        assert overrides[0] == "+experiment=demo"
        read = dict(read_back(o) for o in overrides[1:])
        assert read.keys() == trial.params.keys()
        assert all(same(read[k], v) for k, v in trial.params.items()), (overrides, trial.params)
        study.tell(trial, 0.0)


# --- describe ------------------------------------------------------------------------------


def test_describe_says_one_line_per_searched_key() -> None:
    space = parse_search_space(
        {
            "optim.lr": "tag(log, interval(0.001, 1))",
            "optim.batch_size": "choice(10, 50, 100, 200)",
            "optim.epochs": "range(1, 21)",
        },
        [
            "dataset.val_size=10000",
            "optim.max_train_loss=range(0.5, 3, 0.5)",
            "model.hidden_dim=tag(log, int(interval(16, 1024)))",
            "seed=int(interval(0, 9))",
            "dataset.name=mnist_5k,'1e3',null",
            "optim.lr=tag(log, interval(0.001, 1))",
        ],
    )
    assert describe(space) == [
        "optim.lr: log-uniform float in [0.001, 1]",
        "optim.batch_size: one of 10, 50, 100, 200",
        "optim.epochs: int in [1, 20] step 1",
        "optim.max_train_loss: float in [0.5, 2.5] step 0.5",
        "model.hidden_dim: log-uniform int in [16, 1024]",
        "seed: int in [0, 9] step 1",
        "dataset.name: one of mnist_5k, '1e3', null",
    ]


def test_describe_says_uniform_for_a_plain_interval() -> None:
    space = parse_search_space(None, ["optim.lr=interval(0.05, 0.5)"])
    assert describe(space) == ["optim.lr: uniform float in [0.05, 0.5]"]
