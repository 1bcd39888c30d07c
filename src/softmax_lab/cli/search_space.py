"""The search space of ``hydra/sweeper=optuna``: Hydra sweep overrides in, Optuna distributions
out, and each trial's values back into overrides.

The space is given the way the published hydra-optuna-sweeper takes it: ``hydra.sweeper.params``
(key → override value, e.g. in an experiment's YAML) and the sweep's command-line overrides.
Every entry is parsed with Hydra's own override grammar (``OverridesParser``), so a value means
here what it means to Hydra's grid sweeper:

======================================  ==============================================
override value                          Optuna distribution
======================================  ==============================================
``interval(0.001, 1)``                  ``FloatDistribution(0.001, 1.0)``
``interval(1, 5)``                      ``FloatDistribution(1.0, 5.0)`` (Hydra makes the
                                        ends floats; as in hydra-optuna-sweeper)
``int(interval(1, 5))``                 ``IntDistribution(1, 5)``: both ends included
``float(interval(1, 5))``               ``FloatDistribution(1.0, 5.0)``
``tag(log, interval(0.001, 1))``        ``FloatDistribution(0.001, 1.0, log=True)``
``tag(log, int(interval(1, 100)))``     ``IntDistribution(1, 100, log=True)``
``choice(10, 50, 100)``, ``10,50,100``  ``CategoricalDistribution((10, 50, 100))``: values
                                        keep their types (int, float, str, bool, null)
``range(1, 21)``, ``range(0, 10, 3)``   ``IntDistribution(1, 20)``, ``IntDistribution(0, 9,
                                        step=3)``: high is the last value Hydra's range holds
``range(0.1, 0.5, 0.1)``                ``FloatDistribution(0.1, 0.4, step=0.1)``
``choice(7)``, ``range(3, 4)``          one value: a fixed override ``key=7``, not searched
anything else (``0.1``, ``mlp``, …)     a fixed override, passed to every trial unchanged
======================================  ==============================================

``range`` keeps Hydra's meaning: ``range(start, stop, step)`` excludes ``stop``, as the grid
sweeper runs it, so Optuna's inclusive ``high`` is the last value actually in the range.
hydra-optuna-sweeper passed ``stop`` itself as ``high``, which added a value the grid never runs
(``range(1, 5)`` searched 1..5 there; here 1..4). Intervals are continuous: Hydra documents
``interval(a, b)`` as ``a <= x < b``; Optuna may return ``b`` itself for floats, and an int
interval includes both ends.

The command line wins over ``hydra.sweeper.params`` for the same key, as in Hydra: a plain
``optim.lr=0.1`` on the command line beside ``optim.lr: tag(log, interval(0.001, 1))`` in the
params fixes ``optim.lr`` to 0.1 (and a command-line sweep searches a key the params fixed); the
replacement is logged. Within one source, the last override of a key wins. A key is the same
whatever its prefix (``++optim.lr=0.1`` replaces ``optim.lr=interval(…)``).

Every problem is found before any trial runs and reported at once in one ``ConfigError``, one
line each, naming the params key (``hydra.sweeper.params.optim.lr``) or the command-line
override, the rule and what was given.
"""

from __future__ import annotations

import difflib
import logging
import math
import numbers
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from itertools import islice
from typing import Any

import numpy as np
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    Glob,
    IntervalSweep,
    Override,
    OverrideType,
    Quote,
    QuotedString,
    RangeSweep,
    Sweep,
    ValueType,
)
from hydra.errors import HydraException, OverrideParseException
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from softmax_lab.errors import ConfigError

__all__ = [
    "KNOWN_TAGS",
    "MAX_FLOAT_RANGE",
    "PARAMS_KEY",
    "SearchSpace",
    "describe",
    "format_value",
    "parse_search_space",
    "trial_overrides",
]

log = logging.getLogger(__name__)

PARAMS_KEY = "hydra.sweeper.params"
KNOWN_TAGS = frozenset({"log"})
# a float range is counted the way Hydra walks it (exact decimals), one value at a time: past
# this many values a continuous interval(...) says the same thing
MAX_FLOAT_RANGE = 100_000

_PREFIXES = {OverrideType.ADD: "+", OverrideType.FORCE_ADD: "++", OverrideType.DEL: "~"}


@dataclass(frozen=True)
class SearchSpace:
    """What an Optuna sweep searches, and what every trial gets unchanged.

    Attributes
    ----------
    distributions : dict of str to BaseDistribution
        Searched key (``optim.lr``, ``model``) → its distribution; the params' keys first in
        their order, then the keys the command line adds.
    fixed : list of str
        Plain overrides for every trial, as written (``+experiment=demo``, ``model=mlp``), in
        the same order.
    """

    distributions: dict[str, BaseDistribution]
    fixed: list[str]


class _RefusedError(Exception):
    """One override breaks a rule; the message says which and what was given."""


def parse_search_space(
    params: Mapping[str, Any] | None,
    arguments: Sequence[str],
    *,
    known_keys: Collection[str] | None = None,
) -> SearchSpace:
    """The search space of ``hydra.sweeper.params`` and the command line's overrides.

    Parameters
    ----------
    params : mapping of str to override value, or None
        ``hydra.sweeper.params``: ``{"optim.lr": "tag(log, interval(0.001, 1))"}``; each entry
        is parsed as the override ``f"{key}={value}"`` (None is written ``null``).
    arguments : sequence of str
        The sweep's command-line overrides; for a key also in ``params``, they win.
    known_keys : collection of str, optional
        The config's dotted keys (e.g. ``flatten(Config())``'s). When given, a plain or ``~``
        override of a key that is neither one of them nor a group above one (``optim``,
        ``model``) is refused, with the closest known key as a hint. Keys under ``hydra.`` and
        ``+``/``++`` overrides (which add keys) are not checked.

    Returns
    -------
    SearchSpace

    Raises
    ------
    ConfigError
        Listing every entry that does not parse or breaks a rule, one line each, e.g.
        ``hydra.sweeper.params.optim.lr: interval(...) needs low < high, got interval(1.0,
        0.0)``.
    """
    entries = [
        (f"{PARAMS_KEY}.{key}", f"{key}={_params_value(value)}", value)
        for key, value in (params or {}).items()
    ]
    entries += [(f"override {a!r}", a, a) for a in arguments]
    known = _with_groups(known_keys) if known_keys is not None else None
    parser = OverridesParser.create()
    merged: dict[str, tuple[str, BaseDistribution | str]] = {}
    problems: list[str] = []
    for where, text, given in entries:
        if isinstance(given, Mapping):
            problems.append(
                f"{where}: expected an override value such as interval(0.001, 1) under a "
                f"dotted key (optim.lr: ...), got a mapping {dict(given)!r}"
            )
            continue
        try:
            override = parser.parse_overrides([text])[0]
            if known is not None:
                _check_known(override, known)
            converted = _convert(override)
        except OverrideParseException as e:
            problems.append(f"{where}: {_one_line(str(e))}")
            continue
        except _RefusedError as e:
            problems.append(f"{where}: {e}")
            continue
        key = override.key_or_group + (f"@{override.package}" if override.package else "")
        earlier = merged.get(key)
        if earlier and earlier[0].startswith(PARAMS_KEY) and not where.startswith(PARAMS_KEY):
            log.info("%s: the command line's %s replaces %s", key, text, earlier[0])
        merged[key] = (where, converted)  # a later one wins, in the earlier one's place
    if problems:
        raise ConfigError.broken(problems)
    return SearchSpace(
        distributions={k: v for k, (_, v) in merged.items() if isinstance(v, BaseDistribution)},
        fixed=[v for _, v in merged.values() if isinstance(v, str)],
    )


def trial_overrides(space: SearchSpace, params: Mapping[str, Any]) -> list[str]:
    """The overrides of one trial: ``space.fixed``, then ``key=value`` for each searched key.

    ``params`` is the trial's values (``trial.params``); each is written so that Hydra reads it
    back as the same value and type (``format_value``), a float distribution's as a float and
    an int distribution's as an int.

    Raises
    ------
    ValueError
        If ``params`` misses a searched key or has a key the space does not search.
    """
    missing = [k for k in space.distributions if k not in params]
    extra = [k for k in params if k not in space.distributions]
    if missing or extra:
        raise ValueError(
            "trial params must have exactly the searched keys: "
            + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else [])
                + ([f"not searched {', '.join(map(str, extra))}"] if extra else [])
            )
        )
    searched = []
    for key, distribution in space.distributions.items():
        value = params[key]
        if isinstance(distribution, FloatDistribution):
            value = float(value)
        elif isinstance(distribution, IntDistribution):
            value = int(value)
        searched.append(f"{key}={format_value(value)}")
    return [*space.fixed, *searched]


def describe(space: SearchSpace) -> list[str]:
    """One line per searched key: ``optim.lr: log-uniform float in [0.001, 1]``,
    ``optim.batch_size: one of 10, 50, 100, 200``, ``optim.epochs: int in [1, 20] step 1``."""
    lines = []
    for key, d in space.distributions.items():
        if isinstance(d, FloatDistribution):
            if d.log:
                text = f"log-uniform float in [{_number(d.low)}, {_number(d.high)}]"
            elif d.step is None:
                text = f"uniform float in [{_number(d.low)}, {_number(d.high)}]"
            else:
                text = f"float in [{_number(d.low)}, {_number(d.high)}] step {_number(d.step)}"
        elif isinstance(d, IntDistribution):
            if d.log:
                text = f"log-uniform int in [{d.low}, {d.high}]"
            else:
                text = f"int in [{d.low}, {d.high}] step {d.step}"
        elif isinstance(d, CategoricalDistribution):
            text = "one of " + ", ".join(format_value(c) for c in d.choices)
        else:  # not made here; said as Optuna says it
            text = repr(d)
        lines.append(f"{key}: {text}")
    return lines


def format_value(value: Any) -> str:
    """``value`` as an override's value that Hydra parses back to the same value and type.

    Floats by ``repr`` (exact round trip: ``0.1``, ``1e-05``, ``inf``), ints as digits, bools as
    ``true``/``false``, None as ``null``; a string bare when Hydra reads it back as that string,
    else single-quoted (``'1e3'``, ``'a,b'``, ``'true'``, ``' padded'``). NumPy scalars are
    written as the Python value they hold.

    Raises
    ------
    TypeError
        For anything else (lists, dicts, objects): not a value a search space holds.
    """
    if value is None:
        return "null"
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))  # np.float64's own repr is "np.float64(0.1)"
    if isinstance(value, str):
        if _reads_back(value):
            return value
        return QuotedString(text=value, quote=Quote.single).with_quotes()
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) as an override value")


def _number(x: float) -> str:
    """A bound for people: ``1.0`` → ``1``, ``0.001`` → ``0.001``."""
    return str(int(x)) if x.is_integer() and abs(x) < 1e16 else repr(x)


def _params_value(value: Any) -> str:
    """A ``hydra.sweeper.params`` value as the text after ``key=``."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return format_value(value)
    return str(value)


@cache
def _parser() -> OverridesParser:
    return OverridesParser.create()


def _reads_back(text: str) -> bool:
    """Whether Hydra parses ``key=text`` as the string ``text`` itself."""
    try:
        override = _parser().parse_override(f"key={text}")
    except HydraException:
        return False
    value = override.value()
    return override.value_type == ValueType.ELEMENT and type(value) is str and value == text


def _one_line(message: str) -> str:
    """Hydra's parse error on one line: its lines joined, the grammar link left out, the caret
    under a lexer error turned into the character's position."""
    lines = [line for line in message.splitlines() if not line.startswith("See https://")]
    prefix = "LexerNoViableAltException: "
    out: list[str] = []
    for line in lines:
        if line.strip() == "^" and out:  # Hydra draws it under the override after the prefix
            out[-1] += f" (at character {len(line) - len(prefix)})"
        else:
            out.append(line)
    return ": ".join(out)


def _with_groups(known_keys: Collection[str]) -> set[str]:
    """The keys and every group above one: ``optim.lr`` → ``optim.lr``, ``optim``."""
    known = set(known_keys)
    for key in known_keys:
        parts = key.split(".")
        known.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return known


def _check_known(override: Override, known: set[str]) -> None:
    if override.is_hydra_override() or override.type in (OverrideType.ADD, OverrideType.FORCE_ADD):
        return
    key = override.key_or_group
    if key in known:
        return
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean {close[0]}?)" if close else " (add + to add a new key)"
    raise _RefusedError(f"{key} is not a key of the config{hint}")


def _convert(override: Override) -> BaseDistribution | str:
    """The distribution of a sweep override, or the fixed override (text) of a plain one."""
    if not override.is_sweep_override():
        assert override.input_line is not None  # the parser sets it
        return override.input_line
    key = override.get_key_element()
    if override.type != OverrideType.CHANGE:
        bare = key[len(_PREFIXES[override.type]) :]
        raise _RefusedError(
            f"a searched key takes no {_PREFIXES[override.type]} prefix (each trial sets a key "
            f"the config has): write {bare}=…, and add the key to the config first if it is new"
        )
    value = override.value()
    if isinstance(value, Glob):
        raise _RefusedError(
            "glob(...) is not supported by the Optuna sweeper: list the options with choice(...)"
        )
    assert isinstance(value, Sweep)  # is_sweep_override: a choice, range, interval or glob
    unknown = sorted(value.tags - KNOWN_TAGS)
    if unknown:
        raise _RefusedError(
            f"unknown tag {', '.join(unknown)}: the Optuna sweeper knows "
            f"{', '.join(sorted(KNOWN_TAGS))} (tag(log, interval(a, b)))"
        )
    if isinstance(value, ChoiceSweep | RangeSweep):
        if value.shuffle:
            raise _RefusedError(
                "shuffle(...) has no meaning here (Optuna's sampler picks the order): drop shuffle"
            )
        if "log" in value.tags:
            raise _RefusedError(
                "tag(log, ...) applies to interval(...) only, got it on a "
                + ("choice" if isinstance(value, ChoiceSweep) else "range")
            )
    if isinstance(value, ChoiceSweep):
        return _categorical(key, value)
    if isinstance(value, RangeSweep):
        return _range(key, value)
    assert isinstance(value, IntervalSweep)
    return _interval(value)


def _categorical(key: str, sweep: ChoiceSweep) -> CategoricalDistribution | str:
    choices: list[bool | int | float | str | None] = []
    for item in sweep.list:
        if isinstance(item, QuotedString):
            item = item.text
        if isinstance(item, Sweep):
            raise _RefusedError(
                "choice(...) takes plain values, got a choice(...) nested in it: list every "
                "value in one choice(...)"
            )
        if isinstance(item, list | dict):
            raise _RefusedError(
                "choice values must be null, bool, int, float or string (what Optuna's "
                f"categorical distribution stores), got the {type(item).__name__} {item!r}"
            )
        if isinstance(item, float) and math.isnan(item):
            raise _RefusedError("choice values must not be nan (Optuna cannot find it again)")
        for earlier in choices:
            if earlier == item:  # 1 == 1.0 == true: Optuna would suggest the first for both
                raise _RefusedError(
                    f"choice values must differ, got {format_value(earlier)} and "
                    f"{format_value(item)}, equal to Optuna"
                )
        choices.append(item)
    if len(choices) == 1:
        return f"{key}={format_value(choices[0])}"
    return CategoricalDistribution(choices)


def _range(key: str, sweep: RangeSweep) -> IntDistribution | FloatDistribution | str:
    start, stop, step = sweep.start, sweep.stop, sweep.step
    assert start is not None and stop is not None  # Hydra's range() sets both
    given = f"range({start}, {stop}, {step})"
    if not all(math.isfinite(x) for x in (start, stop, step)):
        raise _RefusedError(f"range(...) needs finite numbers, got {given}")
    if step <= 0:
        raise _RefusedError(f"range(...) needs step > 0 (ascending, no reverse=true), got {given}")
    values = sweep.range()
    if isinstance(values, range):
        if len(values) == 0:
            raise _RefusedError(f"range(...) has no values (Hydra's stop is excluded), got {given}")
        if len(values) == 1:
            return f"{key}={values[0]}"
        return IntDistribution(values[0], values[-1], step=int(step))
    # count as Hydra walks it, so the last value is the last one its grid would run
    count = sum(1 for _ in islice(values, MAX_FLOAT_RANGE + 1))
    if count == 0:
        raise _RefusedError(f"range(...) has no values (Hydra's stop is excluded), got {given}")
    if count > MAX_FLOAT_RANGE:
        raise _RefusedError(
            f"range(...) has more than {MAX_FLOAT_RANGE} values, got {given}: search "
            "interval(start, stop) instead"
        )
    if count == 1:
        return f"{key}={format_value(float(start))}"
    # in Optuna's decimal arithmetic (str of each float), so it keeps high as given
    high = Decimal(repr(float(start))) + (count - 1) * Decimal(repr(float(step)))
    return FloatDistribution(float(start), float(high), step=float(step))


def _interval(sweep: IntervalSweep) -> IntDistribution | FloatDistribution:
    low, high = sweep.start, sweep.end
    assert low is not None and high is not None  # Hydra's interval() sets both
    given = f"interval({low}, {high})"
    if not (math.isfinite(low) and math.isfinite(high)):
        raise _RefusedError(f"interval(...) needs finite ends, got {given}")
    if low >= high:
        raise _RefusedError(f"interval(...) needs low < high, got {given}")
    is_log = "log" in sweep.tags
    if is_log and low <= 0:
        raise _RefusedError(f"tag(log, interval(...)) needs low > 0, got {given}")
    if isinstance(low, int) and isinstance(high, int):  # int(interval(...))
        return IntDistribution(low, high, log=is_log)
    return FloatDistribution(float(low), float(high), log=is_log)
