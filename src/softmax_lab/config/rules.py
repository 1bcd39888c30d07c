"""The range rules of the config: one table, one row per rule, walked by ``schema.validate``.

Types are checked earlier, when Hydra composes the structured config (``optim.batch_size=big``
fails there); these rules check what a type cannot (lr > 0, a directory that exists). Each row
names a dotted key, its constraint (``softmax_lab.core.constraints``) and, for a rule that
holds only sometimes, a condition on another key. Rows are checked in order, and a key reports
only its first broken row: an unset ``dataset.path`` is not also "not a directory".
"""

from __future__ import annotations

from dataclasses import dataclass

from softmax_lab.core.constraints import (
    Constraint,
    ExistingDirectory,
    Interval,
    NonEmptyString,
    OneOf,
    Required,
    Unset,
    problem,
)
from softmax_lab.core.model import MODEL_NAMES
from softmax_lab.core.training import ON_EXPLODE
from softmax_lab.data.sources import DATASET_NAMES

__all__ = ["LOG_MODEL_CHOICES", "RULES", "Rule", "When", "broken_rules", "lookup"]


@dataclass(frozen=True)
class When:
    """A row's condition: the config's ``key`` equals ``value`` (with ``negate``: differs)."""

    key: str
    value: object
    negate: bool = False

    def holds(self, cfg: object) -> bool:
        return (lookup(cfg, self.key) == self.value) != self.negate


@dataclass(frozen=True)
class Rule:
    """``key`` must satisfy ``constraint`` (only where ``when`` holds, if given)."""

    key: str
    constraint: Constraint
    when: When | None = None


# which runs log an MLflow model (softmax_lab.tracking.models.logs_at_close)
LOG_MODEL_CHOICES = ("single", "all", "none")

_IDX = When("dataset.name", "idx")
_NOT_IDX = When("dataset.name", "idx", negate=True)

RULES: tuple[Rule, ...] = (
    Rule("dataset.name", OneOf(DATASET_NAMES)),
    Rule("dataset.path", Required("for dataset=idx"), when=_IDX),
    Rule("dataset.path", ExistingDirectory(), when=_IDX),
    Rule(
        "dataset.path",
        Unset("unless dataset=idx (the other datasets find their files)"),
        when=_NOT_IDX,
    ),
    Rule("dataset.split_seed", Interval(int, 0, None, closed="left")),
    Rule("dataset.n_classes", Interval(int, 2, None, closed="left")),
    # the upper bound, smaller than the training set, is checked when the data is loaded
    Rule("dataset.val_size", Interval(int, 0, None, closed="left")),
    Rule("model.name", OneOf(MODEL_NAMES)),
    Rule("model.hidden_dim", Interval(int, 1, None, closed="left")),
    Rule("optim.name", OneOf(("sgd",))),
    Rule("optim.lr", Interval(float, 0, None, closed="neither")),
    Rule("optim.batch_size", Interval(int, 1, None, closed="left")),
    Rule("optim.epochs", Interval(int, 1, None, closed="left")),
    Rule(
        "optim.max_train_loss",
        Interval(float, 0, None, closed="neither"),
        when=When("optim.max_train_loss", None, negate=True),  # None: ln(dataset.n_classes)
    ),
    Rule("optim.on_explode", OneOf(ON_EXPLODE)),
    Rule("seed", Interval(int, 0, None, closed="left")),
    Rule("tracking.experiment", NonEmptyString("name")),
    Rule("tracking.log_model", OneOf(LOG_MODEL_CHOICES)),
)


def lookup(cfg: object, key: str) -> object:
    """The value at a dotted key: ``lookup(cfg, "optim.lr")`` is ``cfg.optim.lr``."""
    value = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def broken_rules(cfg: object) -> list[str]:
    """Every broken rule of ``cfg``, in table order, as ``"key must …, got value"``."""
    problems, reported = [], set()
    for rule in RULES:
        if rule.key in reported or (rule.when is not None and not rule.when.holds(cfg)):
            continue
        message = problem(rule.key, rule.constraint, lookup(cfg, rule.key))
        if message is not None:
            problems.append(message)
            reported.add(rule.key)
    return problems
