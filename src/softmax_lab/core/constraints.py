"""Parameter constraints: small objects that test a value and say the rule it breaks.

As in scikit-learn's ``_parameter_constraints``, a rule is a value, not an if-statement:
``Interval(int, 1, None, closed="left")`` tests ``x >= 1`` and says ``must be >= 1``, so the
check and its message cannot drift apart. ``check_params`` checks a function's keyword
hyperparameters against such rules (``sgd_epoch``, ``build_model``); the table of every config
key's rule is ``softmax_lab.config.rules``.

A message reads ``KEY must …, got VALUE`` with the value's ``repr``:
``batch_size must be >= 1, got 0``. Pure Python: no NumPy needed (NumPy scalars pass as the
numbers they are).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Literal, Protocol

from softmax_lab.errors import ConfigError, InputError

__all__ = [
    "Constraint",
    "ExistingDirectory",
    "Interval",
    "NonEmptyString",
    "OneOf",
    "Required",
    "Unset",
    "check_params",
    "problem",
]


class Constraint(Protocol):
    """What a rule does: test a value, and say what it must be."""

    def is_satisfied_by(self, value: object) -> bool:
        """Whether ``value`` keeps the rule."""
        ...

    def describe(self, value: object) -> str:
        """The rule as a message says it to ``value``: ``"must be >= 1"``."""
        ...


@dataclass(frozen=True)
class Interval:
    """A number of one kind between two bounds; ``None`` leaves a side open.

    ``kind`` is ``int`` (any integral number) or ``float`` (any real number, ints included).
    ``bool`` is neither, although Python counts ``True`` as 1. A ``float`` interval also
    requires a finite value, so NaN and ±inf never pass.

    ``closed`` says which bounds belong to the interval, as in scikit-learn: ``"left"``
    (``low <= x``), ``"right"`` (``x <= high``), ``"both"`` or ``"neither"``.
    """

    kind: type[int] | type[float]
    low: float | None
    high: float | None
    closed: Literal["left", "right", "both", "neither"]

    def __post_init__(self) -> None:
        if self.kind not in (int, float):
            raise TypeError(f"Interval kind must be int or float, got {self.kind!r}")
        if self.closed not in ("left", "right", "both", "neither"):
            raise ValueError(
                f"Interval closed must be one of left, right, both, neither, got {self.closed!r}"
            )
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"Interval low must be <= high, got {self.low} > {self.high}")

    def _has_type(self, value: object) -> bool:
        kind = Integral if self.kind is int else Real
        return isinstance(value, kind) and not isinstance(value, bool)

    def is_satisfied_by(self, value: object) -> bool:
        if not self._has_type(value):
            return False
        x: float = value  # type: ignore[assignment]  # an Integral or a Real, checked above
        if self.kind is float:
            try:
                finite = math.isfinite(x)
            except OverflowError:  # an int too large for a float
                finite = False
            if not finite:  # NaN and ±inf: a float interval says "and finite"
                return False
        if self.low is not None:
            left_closed = self.closed in ("left", "both")
            if not (x >= self.low if left_closed else x > self.low):
                return False
        if self.high is not None:
            right_closed = self.closed in ("right", "both")
            if not (x <= self.high if right_closed else x < self.high):
                return False
        return True

    def _bounds(self) -> str:
        """``>= 1``, ``> 0 and finite``, ``in [0, 1)``: the rule for a value of the right type."""
        left_closed = self.closed in ("left", "both")
        right_closed = self.closed in ("right", "both")
        if self.low is not None and self.high is not None:
            left, right = "[" if left_closed else "(", "]" if right_closed else ")"
            return f"in {left}{self.low}, {self.high}{right}"
        if self.low is not None:
            text = f"{'>=' if left_closed else '>'} {self.low}"
        elif self.high is not None:
            text = f"{'<=' if right_closed else '<'} {self.high}"
        else:
            text = ""
        if self.kind is float:  # a bounded interval is finite anyway: say it only when open
            text = f"{text} and finite" if text else "finite"
        return text

    def describe(self, value: object) -> str:
        bounds = self._bounds()
        if self._has_type(value) and bounds:
            return f"must be {bounds}"
        # the bounds alone would mislead here (1.5 is >= 1): name the kind of number too
        kind = "an int" if self.kind is int else "a real number"
        return f"must be {kind} {bounds}".rstrip()


@dataclass(frozen=True)
class OneOf:
    """One of a few values, compared by type and value (so ``True`` is not ``1``)."""

    values: tuple[object, ...]

    def is_satisfied_by(self, value: object) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)

    def describe(self, value: object) -> str:
        if len(self.values) == 1:
            return f"must be {self.values[0]!r}"
        return f"must be one of {', '.join(str(v) for v in self.values)}"


@dataclass(frozen=True)
class Required:
    """Set: neither ``None`` nor the empty string. ``reason`` ends the message
    (``"for dataset=idx"``) when the key is needed only sometimes."""

    reason: str = ""

    def is_satisfied_by(self, value: object) -> bool:
        return value is not None and value != ""

    def describe(self, value: object) -> str:
        return f"must be set {self.reason}" if self.reason else "must be set"


@dataclass(frozen=True)
class Unset:
    """``None``: a key that must not be given here; ``reason`` ends the message
    (``"unless dataset=idx"``)."""

    reason: str = ""

    def is_satisfied_by(self, value: object) -> bool:
        return value is None

    def describe(self, value: object) -> str:
        return f"must be unset {self.reason}" if self.reason else "must be unset"


@dataclass(frozen=True)
class NonEmptyString:
    """A ``str`` other than ``""``; ``noun`` says what it names (``"a non-empty name"``)."""

    noun: str = "string"

    def is_satisfied_by(self, value: object) -> bool:
        return isinstance(value, str) and value != ""

    def describe(self, value: object) -> str:
        return f"must be a non-empty {self.noun}"


@dataclass(frozen=True)
class ExistingDirectory:
    """A path (``str`` or ``os.PathLike``, ``~`` expanded) to a directory that exists now."""

    def is_satisfied_by(self, value: object) -> bool:
        if not isinstance(value, str | os.PathLike) or value == "":
            return False
        return Path(value).expanduser().is_dir()

    def describe(self, value: object) -> str:
        return "must be an existing directory"


def problem(key: str, constraint: Constraint, value: object) -> str | None:
    """``"KEY must …, got VALUE"`` if ``value`` breaks ``constraint``, else ``None``."""
    if constraint.is_satisfied_by(value):
        return None
    return f"{key} {constraint.describe(value)}, got {value!r}"


def check_params(
    constraints: Mapping[str, Constraint],
    /,
    *,
    error: type[InputError] = ConfigError,
    **params: object,
) -> None:
    """Check keyword hyperparameters against their constraints, all at once.

    Parameters
    ----------
    constraints : mapping of str to Constraint
        The rule of each parameter, by keyword name; every name in ``params`` needs one.
    error : subclass of InputError
        What to raise; ``ConfigError`` unless the caller documents another (e.g.
        ``DatasetError``).
    **params
        The values, by keyword name: ``check_params(rules, batch_size=batch_size)``.

    Raises
    ------
    error
        Naming every broken rule, ``"; "``-separated: ``batch_size must be >= 1, got 0``.
    """
    broken = [p for k, v in params.items() if (p := problem(k, constraints[k], v)) is not None]
    if broken:
        raise error("; ".join(broken))
