"""``compare --where``: keep the runs whose params, metrics, status or data match expressions.

``filter_runs`` parses every ``KEY OP VALUE`` expression (``optim.lr>0.1``, ``status=FINISHED``,
``dataset.digest=e065f99e``) against the keys a frame can hold, then keeps the runs for which all
of them hold. Pure pandas on the frame ``softmax_lab.tracking.runs_frame`` returns; never
imports mlflow.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from softmax_lab.review.report import METRICS, PARAM_ORDER

__all__ = ["DIGEST_KEY", "WHERE_OPS", "filter_runs"]

# --- --where: keep the runs that match ---------------------------------------------------------

WHERE_OPS = ("=", "==", "!=", "<", "<=", ">", ">=")
_ORDERING = ("<", "<=", ">", ">=")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# KEY OP VALUE; the value may not start with an operator character, so "lr=>1" is malformed
_WHERE = re.compile(r"\s*([^\s=!<>]+)\s*(==|!=|<=|>=|=|<|>)\s*([^\s=!<>].*?)\s*")

# The data a run trained on: its MLflow dataset inputs' digest is the first 36 hex digits of the
# dataset fingerprint, which every run since the fingerprint existed also has as a tag (runs
# logged before the inputs did too): the tag is what is matched, by prefix.
DIGEST_KEY = "dataset.digest"
_FINGERPRINT = "tags.sl.dataset_fingerprint"
_MIN_DIGEST = 8  # hex digits: a shorter prefix would pick other data's runs by chance
_HEX = re.compile(r"[0-9a-fA-F]+")


@dataclass(frozen=True)
class _Where:
    text: str
    column: str
    op: str
    value: str
    prefix: bool = False  # the value is a prefix of the run's (a digest of its fingerprint)


def _where_keys(df: pd.DataFrame) -> dict[str, str]:
    """Every key a ``--where`` may name, mapped to its column in ``df``.

    The config's params and the four metrics are always valid (a frame of no runs has no
    columns for them), plus whatever other params and metrics ``df`` holds.
    """
    logged = {
        prefix: [c.removeprefix(prefix) for c in df.columns if c.startswith(prefix)]
        for prefix in ("params.", "metrics.")
    }
    params = dict.fromkeys([*PARAM_ORDER, *logged["params."]])
    metrics = dict.fromkeys([*METRICS, *logged["metrics."]])
    return {
        "status": "status",
        **{k: f"params.{k}" for k in params},
        **{k: f"metrics.{k}" for k in metrics},
        DIGEST_KEY: _FINGERPRINT,
    }


def _parse_where(text: str, keys: dict[str, str]) -> _Where:
    valid = "valid keys: " + ", ".join(keys)
    found = _WHERE.fullmatch(text)
    if found is None:
        raise ValueError(
            f"where expression {text!r} is malformed: expected KEY OP VALUE with OP one of "
            f"{' '.join(WHERE_OPS)}, e.g. 'optim.lr>0.1' or 'status=FINISHED'; {valid}"
        )
    key, op, value = found.groups()
    key = key.removeprefix("params.").removeprefix("metrics.")
    if key not in keys:
        # "lr" means "optim.lr"; else the nearest spelling ("optim.lrr")
        close = [k for k in keys if k.rsplit(".", 1)[-1] == key]
        close = close or difflib.get_close_matches(key, keys, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"where expression {text!r}: unknown key {key!r}{hint}; {valid}")
    if key == DIGEST_KEY:
        if op in _ORDERING or not _HEX.fullmatch(value) or not _MIN_DIGEST <= len(value) <= 64:
            raise ValueError(
                f"where expression {text!r}: {DIGEST_KEY} takes = or != and {_MIN_DIGEST} to 64 "
                "hex digits of a dataset fingerprint (the digest of the run's dataset inputs, "
                "or its tag sl.dataset_fingerprint), e.g. 'dataset.digest=e065f99e7ed1'"
            )
        return _Where(text, keys[key], op, value.casefold(), prefix=True)
    if op in _ORDERING and _number(value) is None:
        raise ValueError(
            f"where expression {text!r}: {op} compares numbers, got {value!r}; "
            "use = or != to compare text"
        )
    return _Where(text, keys[key], op, value)


def _number(value: Any) -> float | None:
    """``value`` as a float if it is a number or a string of one, else None."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _holds(cell: Any, where: _Where) -> bool:
    """Whether one run's value satisfies ``where``; a run without the key matches only ``!=``."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return where.op == "!="
    if where.prefix:  # text, never numbers: "12345678" is a digest
        same = str(cell).casefold().startswith(where.value)
        return same if where.op in ("=", "==") else not same
    a, b = _number(cell), _number(where.value)
    if a is not None and b is not None:
        return _COMPARE[where.op](a, b)
    if where.op in _ORDERING:  # the value is a number, this run's is not (e.g. "None")
        return False
    same = str(cell).casefold() == where.value.casefold()
    return same if where.op in ("=", "==") else not same


def filter_runs(df: pd.DataFrame, exprs: Sequence[str]) -> pd.DataFrame:
    """The runs of ``df`` for which every expression holds, in their order.

    Parameters
    ----------
    df : DataFrame
        As returned by ``softmax_lab.tracking.runs_frame``.
    exprs : sequence of str
        ``KEY OP VALUE``, e.g. ``"optim.lr>0.1"``, ``"model.name=mlp"``, ``"test/error<=0.1"``,
        ``"status!=FAILED"``. KEY is a param, a metric (its final value), ``status`` or
        ``dataset.digest``; OP one of ``= == != < <= > >=``. Both sides numbers (params are
        logged as text: ``"0.5"`` counts): compared as numbers, so ``optim.lr=0.50`` matches
        ``0.5``. Otherwise ``=``/``==``/``!=`` compare text, ignoring case
        (``optim.shuffle=false`` matches the logged ``False``), and the ordering operators,
        which need a number VALUE, do not match. A run without a value
        for KEY (a metric it never logged) matches only ``!=``. ``dataset.digest=VALUE`` (or
        ``!=``) holds for the runs whose dataset fingerprint (tag ``sl.dataset_fingerprint``)
        starts with VALUE, 8 to 64 hex digits, case ignored: the digest of the runs' MLflow
        dataset inputs (36 digits), the whole fingerprint, or a shorter prefix of it.

    Raises
    ------
    ValueError
        For a malformed expression, an unknown key, an ordering operator with a non-numeric
        VALUE, or a ``dataset.digest`` VALUE that is not 8 to 64 hex digits; the message names
        the expression and lists the valid keys. Every expression is checked before any is
        applied.
    """
    keys = _where_keys(df)
    wheres = [_parse_where(text, keys) for text in exprs]
    keep = pd.Series(True, index=df.index)
    for where in wheres:
        if where.column not in df.columns:  # a known key no run has: only != can hold
            keep &= where.op == "!="
            continue
        keep &= df[where.column].map(lambda cell, w=where: _holds(cell, w)).astype(bool)
    return df[keep]
