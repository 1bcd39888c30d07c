"""Rerun a logged run and check that it reproduces: same config, same data, same numbers.

``prepare_rerun`` rebuilds the job from what the original run logged (``config.yaml``,
``overrides.yaml``, the ``sl.dataset_fingerprint`` tag), applies ``--set`` changes and checks
that the dataset on disk has the fingerprint the run used; it creates nothing, so every mistake
(unknown run, bad key, other data) stops before a run exists. ``execute_rerun`` then runs the
job as a new run in the same experiment, tagged ``sl.rerun_of``, and compares it with the
original: every per-epoch metric exactly, every parameter array by SHA-256 (``sl.sha256.<name>``).
``epoch_seconds`` is wall time: it is reported, never compared.

Nothing here prints; the CLI shows the plan's warnings and the report lines.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from threadpoolctl import threadpool_limits

from softmax_lab import tracking
from softmax_lab.config import Config, ConfigError, config_from_dict, config_hash, flatten, validate
from softmax_lab.datasets import DatasetError
from softmax_lab.idx import IdxFormatError
from softmax_lab.job import (
    JobContext,
    array_sha256,
    load_job_data,
    run_fused_replay,
    run_job,
    run_name,
)
from softmax_lab.trainer import EpochMetrics

__all__ = [
    "REPRODUCED",
    "Comparison",
    "Difference",
    "ParamCheck",
    "RerunError",
    "RerunPlan",
    "RerunResult",
    "RunRecord",
    "apply_sets",
    "compare_records",
    "environment_warnings",
    "execute_rerun",
    "format_differences",
    "prepare_rerun",
    "verdict",
]

log = logging.getLogger(__name__)

REPRODUCED, DIFFERS, CHANGED = "reproduced exactly", "differs", "changed (--set)"
TIMING = "epoch_seconds"  # wall time: shown, never part of the verdict
COMPARED = tuple(k for k in tracking.METRIC_KEYS if k != TIMING)
ENVIRONMENT = {
    "sl.version": "softmax-lab version",
    "sl.git_commit": "code version (git commit)",
    "sl.numpy": "NumPy",
    "sl.blas": "BLAS",
    "sl.threads": "BLAS thread count",
}
# --set keys that say where the data is, not what it is (config_hash leaves them out too)
LOCATION_KEYS = ("dataset.path", "dataset.cache_dir")
# --set keys that choose other data: the fingerprint is then expected to change
DATA_KEYS = ("dataset.name", "dataset.split_seed")


class RerunError(ValueError):
    """The run cannot be rerun as asked: the message says what was expected and what was found."""


# --- comparing two runs (pure) ----------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    """What a comparison needs of one run, as read back from the store.

    ``history`` maps a metric key to its ``(epoch, value)`` points; ``hashes`` maps a parameter
    name (``theta``, ``W1``, …) to the hex SHA-256 of its array.
    """

    status: str
    history: Mapping[str, Sequence[tuple[int, float]]]
    hashes: Mapping[str, str]


@dataclass(frozen=True)
class Difference:
    """One per-epoch value that is not bit-for-bit equal; None where a run has no such epoch."""

    metric: str
    epoch: int
    original: float | None
    rerun: float | None


@dataclass(frozen=True)
class ParamCheck:
    """SHA-256 of one parameter array in both runs; None where a run did not log it."""

    name: str
    original: str | None
    rerun: str | None

    @property
    def match(self) -> bool:
        return self.original is not None and self.original == self.rerun


@dataclass(frozen=True)
class Comparison:
    """Everything that differs between an original run and its rerun."""

    differences: list[Difference]
    params: list[ParamCheck]
    status: tuple[str, str]  # (original, rerun)
    compared: int  # per-epoch values compared (epoch_seconds excluded)
    seconds: tuple[float, float]  # total epoch_seconds (original, rerun): timing, not compared

    @property
    def identical(self) -> bool:
        same_status = self.status[0] == self.status[1]
        return same_status and not self.differences and all(p.match for p in self.params)


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def compare_records(original: RunRecord, rerun: RunRecord) -> Comparison:
    """Compare every per-epoch metric for exact equality and every parameter array by hash.

    ``epoch_seconds`` is only summed into ``Comparison.seconds``. An epoch that one run has and
    the other lacks (a run that stopped early) is a difference with None on the missing side;
    so is a parameter array that only one run logged.
    """
    differences = []
    compared = 0
    for metric in COMPARED:
        a = dict(original.history.get(metric, ()))
        b = dict(rerun.history.get(metric, ()))
        for epoch in sorted(a.keys() | b.keys()):
            compared += 1
            if not _same(a.get(epoch), b.get(epoch)):
                differences.append(Difference(metric, epoch, a.get(epoch), b.get(epoch)))
    names = sorted(original.hashes.keys() | rerun.hashes.keys())
    params = [ParamCheck(n, original.hashes.get(n), rerun.hashes.get(n)) for n in names]
    seconds = (
        sum(v for _, v in original.history.get(TIMING, ())),
        sum(v for _, v in rerun.history.get(TIMING, ())),
    )
    return Comparison(differences, params, (original.status, rerun.status), compared, seconds)


def verdict(comparison: Comparison, *, changed: bool) -> str:
    """``changed (--set)`` for a deliberately changed config, else exact or ``differs``."""
    if changed:
        return CHANGED
    return REPRODUCED if comparison.identical else DIFFERS


def _value(v: float | None) -> str:
    return "—" if v is None else repr(v)  # repr: the shortest text that round-trips exactly


def format_differences(comparison: Comparison, *, limit: int = 20) -> list[str]:
    """The report's lines: status, differing values as a table (at most ``limit`` rows), params.

    Values are printed with ``repr`` so that a difference in the last bit is visible.
    """
    lines = []
    if comparison.status[0] != comparison.status[1]:
        lines.append(f"status: original {comparison.status[0]}, rerun {comparison.status[1]}")
    elif comparison.status[0] != "FINISHED":
        lines.append(f"status: {comparison.status[0]} in both")
    diffs = comparison.differences
    if diffs:
        rows = [("metric", "epoch", "original", "rerun", "rerun - original")]
        for d in diffs[:limit]:
            delta = "" if d.original is None or d.rerun is None else f"{d.rerun - d.original:+.3g}"
            rows.append((d.metric, str(d.epoch), _value(d.original), _value(d.rerun), delta))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        cells = [[c.ljust(w) for c, w in zip(r, widths, strict=True)] for r in rows]
        lines.append("| " + " | ".join(cells[0]) + " |")
        lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        lines.extend("| " + " | ".join(c) + " |" for c in cells[1:])
        if len(diffs) > limit:
            lines.append(f"… and {len(diffs) - limit} more differing values")
    for p in comparison.params:
        if p.match:
            lines.append(f"{p.name}: sha256 match ({(p.original or '')[:16]}…)")
        elif p.original is None or p.rerun is None:
            missing = "original" if p.original is None else "rerun"
            lines.append(f"{p.name}: sha256 MISMATCH (not logged by the {missing})")
        else:
            lines.append(
                f"{p.name}: sha256 MISMATCH (original {p.original[:16]}…, rerun {p.rerun[:16]}…)"
            )
    a, b = comparison.seconds
    lines.append(f"{TIMING} (timing, not compared): original {a:.3f} s, rerun {b:.3f} s in total")
    return lines


# --- rebuilding the job -----------------------------------------------------------------------


def _field_type(key: str) -> Any:
    """The annotated type of a dotted config key (``optim.lr`` → float)."""
    group, _, name = key.rpartition(".")
    owner: type[Any] = typing.get_type_hints(Config)[group] if group else Config
    return typing.get_type_hints(owner)[name]


def _convert(key: str, text: str, annotation: Any) -> Any:
    """``text`` as the type of the field ``key``: int, float, bool, str, or ``X | None``."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    options = typing.get_args(annotation) if union else ()
    if type(None) in options:
        if text.lower() in ("none", "null", "~"):
            return None
        (annotation,) = [t for t in options if t is not type(None)]
    if annotation is bool:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise RerunError(f"--set {key}: expected true or false, got {text!r}")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            raise RerunError(f"--set {key}: expected an integer, got {text!r}") from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise RerunError(f"--set {key}: expected a number, got {text!r}") from None
    return text


def apply_sets(cfg: Config, sets: Sequence[str]) -> tuple[Config, dict[str, Any]]:
    """Apply ``KEY=VALUE`` changes (``optim.lr=0.1``) to a copy of ``cfg``.

    Values are converted to the field's type (``None``/``null`` for optional fields). Returns
    the new config and ``{key: value}`` of the keys whose value actually changed.

    Raises
    ------
    RerunError
        Not ``KEY=VALUE``, a key that is not a run parameter (the message lists the valid ones),
        or a value of the wrong type.
    """
    valid = list(flatten(cfg))
    values: dict[str, dict[str, Any]] = {
        g: dataclasses.asdict(getattr(cfg, g)) for g in ("dataset", "model", "optim")
    }
    top: dict[str, Any] = {"seed": cfg.seed}
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RerunError(f"--set expects KEY=VALUE (e.g. optim.lr=0.1), got {item!r}")
        if key not in valid:
            raise RerunError(f"--set: unknown key {key!r}; valid keys: {', '.join(valid)}")
        value = _convert(key, text.strip(), _field_type(key))
        group, _, name = key.rpartition(".")
        (values[group] if group else top)[name] = value
    new = dataclasses.replace(
        cfg,
        dataset=dataclasses.replace(cfg.dataset, **values["dataset"]),
        model=dataclasses.replace(cfg.model, **values["model"]),
        optim=dataclasses.replace(cfg.optim, **values["optim"]),
        seed=top["seed"],
    )
    before, after = flatten(cfg), flatten(new)
    return new, {k: v for k, v in after.items() if v != before[k]}


def environment_warnings(original: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """One line per environment tag (code version, NumPy, BLAS, threads) that may change numbers."""
    warnings = []
    for key, label in ENVIRONMENT.items():
        was, now = original.get(key), current.get(key, "")
        if was is None:
            warnings.append(f"{label}: not recorded by the original run (now {now or '?'})")
        elif was != now:
            warnings.append(f"{label} differs: original {was or '?'}, now {now or '?'}")
        elif key == "sl.git_commit" and now.endswith("-dirty"):
            warnings.append(
                f"{label}: both runs are {now}, i.e. with uncommitted changes, "
                "so the code may differ all the same"
            )
    return warnings


@dataclass(frozen=True)
class RerunPlan:
    """A rerun ready to go: the original as logged, the config to run, and what to tell the user."""

    original: tracking.LoggedRun
    config: Config
    overrides: list[str]  # the original's command-line overrides, then the --set items
    changed: dict[str, Any]  # keys --set changed in what the run is (not where its data lies)
    fingerprint: str  # of the dataset on disk
    logged_fingerprint: str  # the original's sl.dataset_fingerprint (differs only after --set)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fused_group: str | None = None  # the original's fused plan, replayed by the rerun


def _logged_yaml(original: tracking.LoggedRun, path: str) -> Any:
    text = tracking.read_text_artifact(original.uri, original.run_id, path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RerunError(f"run {original.run_id}: {path} is not valid YAML ({err})") from err


def _read_original(uri: str | None, run_id: str) -> tuple[tracking.LoggedRun, Config, list[str]]:
    original = tracking.run_info(uri, run_id)
    rid, tags = original.run_id, original.tags
    if tags.get("sl.role") == "sweep":
        raise RerunError(
            f"run {rid} is the parent run of sweep {tags.get('sl.sweep_id', '?')}, not a job; "
            "rerun one of its jobs (`softmax-lab compare --sweep ID` lists them)"
        )
    if original.status not in ("FINISHED", "FAILED"):
        raise RerunError(
            f"run {rid} is {original.status}; rerun needs a run that FINISHED or FAILED"
        )
    logged = _logged_yaml(original, "config.yaml")
    if not isinstance(logged, dict):
        raise RerunError(f"run {rid}: config.yaml must hold a mapping, got {type(logged).__name__}")
    try:
        cfg = config_from_dict(logged)
    except (ConfigError, TypeError) as err:
        raise RerunError(
            f"run {rid}: its config.yaml does not fit this version's config: {err}"
        ) from err
    overrides = _logged_yaml(original, "overrides.yaml") or []
    if not isinstance(overrides, list):
        raise RerunError(f"run {rid}: overrides.yaml must hold a list, got {overrides!r}")
    # the original's store and experiment; not part of its sweep
    cfg = dataclasses.replace(
        cfg,
        tracking=dataclasses.replace(
            cfg.tracking,
            uri=original.uri,
            experiment=original.experiment,
            parent_run_id=None,
            sweep_id=None,
        ),
    )
    return original, cfg, [str(o) for o in overrides]


def prepare_rerun(uri: str | None, run_id: str, sets: Sequence[str] = ()) -> RerunPlan:
    """Rebuild the job of ``run_id`` and check its data; create nothing.

    Parameters
    ----------
    uri : str or None
        The store the run is in (None: ``$MLFLOW_TRACKING_URI`` or the default).
    run_id : str
        The run's id, or a unique prefix of it.
    sets : sequence of str
        ``KEY=VALUE`` changes. Changing only where the data lies (``dataset.path``,
        ``dataset.cache_dir``) still gives a verdict; any other change makes the rerun a
        comparison without one.

    Raises
    ------
    softmax_lab.tracking.TrackingError
        No store, no such run.
    RerunError
        The run is not a finished job, a bad ``--set``, a dataset that cannot be loaded, or one
        whose fingerprint is not the run's.
    ConfigError
        The rebuilt config breaks a rule (e.g. ``--set optim.lr=-1``).
    """
    original, cfg, overrides = _read_original(uri, run_id)
    expected = original.tags.get("sl.dataset_fingerprint")
    if not expected:
        raise RerunError(
            f"run {original.run_id} has no sl.dataset_fingerprint tag (it stopped before its data "
            "was loaded), so its data cannot be verified"
        )
    new_cfg, changed = apply_sets(cfg, sets)
    validate(new_cfg)
    try:
        data = load_job_data(new_cfg)
    except (DatasetError, IdxFormatError, OSError) as err:
        raise RerunError(f"cannot load the run's dataset {new_cfg.dataset.name!r}: {err}") from err
    notes = []
    if any(k in DATA_KEYS for k in changed):
        notes.append(
            f"dataset changed by --set: fingerprint {data.fingerprint[:12]}… "
            f"(the run used {expected[:12]}…)"
        )
    elif data.fingerprint != expected:
        raise RerunError(
            f"dataset on disk has fingerprint {data.fingerprint[:12]}…, the run used "
            f"{expected[:12]}… ({data.name} from {data.source}); restore the run's data there, or "
            "point --set dataset.path=DIR at a copy of it"
        )
    here = tracking.environment_tags()
    threads = original.tags.get("sl.threads", "")
    if threads.isdigit():  # execute_rerun runs BLAS with the original's thread count
        here["sl.threads"] = threads
    warnings = environment_warnings(original.tags, here)
    what = {k: v for k, v in changed.items() if k not in LOCATION_KEYS}
    logged_hash = original.tags.get("sl.config_hash")
    if not what and logged_hash and logged_hash != config_hash(cfg, expected):
        warnings.append(
            "config hash differs from the one the run was tagged with: the config schema has "
            "changed since (new keys take their defaults)"
        )
    replay = None
    if group := original.tags.get("sl.fused_group"):
        name, _, description = group.partition(" ")
        if not what and "column=" in description and new_cfg.model.name == "softmax":
            replay = description  # the group's plan: rerun it the way it ran
            notes.append(f"original ran fused (group {name}); rerunning in the same fused mode")
        else:
            why = " because of --set" if what else ""
            notes.append(f"original ran fused (group {group}); rerunning alone{why}")
    return RerunPlan(
        original=original,
        config=new_cfg,
        overrides=[*overrides, *sets],
        changed=what,
        fingerprint=data.fingerprint,
        logged_fingerprint=expected,
        warnings=warnings,
        notes=notes,
        fused_group=replay,
    )


# --- running and comparing --------------------------------------------------------------------


@dataclass(frozen=True)
class RerunResult:
    """The new run and how it compares with the original."""

    run_id: str
    status: str
    reason: str | None
    comparison: Comparison
    verdict: str


def _record(run: tracking.LoggedRun, fallback_names: Sequence[str], scratch: Path) -> RunRecord:
    """Read back a run's metric histories and parameter hashes.

    Runs logged before ``sl.sha256.<name>`` tags existed are hashed from their
    ``params/<name>.npy`` artifacts, for each name in ``fallback_names``.
    """
    history = {k: tracking.metric_history(run.uri, run.run_id, k) for k in tracking.METRIC_KEYS}
    prefix = "sl.sha256."
    hashes = {k.removeprefix(prefix): v for k, v in run.tags.items() if k.startswith(prefix)}
    for name in fallback_names:
        if name in hashes or run.status != "FINISHED":
            continue
        try:
            path = tracking.download_artifact(
                run.uri, run.run_id, f"params/{name}.npy", scratch / run.run_id
            )
        except tracking.TrackingError:
            continue  # not logged: reported as missing
        hashes[name] = array_sha256(np.load(path, allow_pickle=False))
    return RunRecord(run.status, history, hashes)


def execute_rerun(
    plan: RerunPlan,
    *,
    output_root: Path = Path("outputs/reruns"),
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> RerunResult:
    """Run ``plan`` as a new run, compare it with the original, tag it with the verdict.

    The new run is in the original's experiment, tagged ``sl.rerun_of = <original id>`` and,
    once compared, ``sl.rerun_verdict``; its pictures are rendered under
    ``output_root/<date>/<time>-<original id[:8]>``.
    """
    original = plan.original
    now = datetime.now()
    output_dir = output_root / f"{now:%Y-%m-%d}" / f"{now:%H-%M-%S}-{original.run_id[:8]}"
    ctx = JobContext(
        output_dir=output_dir,
        overrides=plan.overrides,
        extra_tags={"sl.rerun_of": original.run_id},
        on_epoch=on_epoch,
    )
    threads = original.tags.get("sl.threads", "")
    # the original's BLAS thread count, so the arithmetic is split the same way
    with threadpool_limits(limits=int(threads) if threads.isdigit() else None, user_api="blas"):
        if plan.fused_group is not None:
            outcome = run_fused_replay(plan.config, ctx, plan.fused_group)
        else:
            outcome = run_job(plan.config, ctx)
    if outcome.run_id is None:  # run_job always creates its run; guard for the type checker
        raise RuntimeError("run_job returned no run id")
    new = tracking.run_info(original.uri, outcome.run_id)
    scratch = output_dir / "original-params"
    rerun_record = _record(new, (), scratch)
    original_record = _record(original, list(rerun_record.hashes), scratch)
    comparison = compare_records(original_record, rerun_record)
    result = verdict(comparison, changed=bool(plan.changed))
    name = f"rerun {original.run_id[:8]}: {run_name(plan.config, plan.overrides)}"
    tracking.set_run_tags(
        original.uri, new.run_id, {"sl.rerun_verdict": result, "mlflow.runName": name[:250]}
    )
    log.info("rerun %s of %s: %s", new.run_id, original.run_id, result)
    return RerunResult(new.run_id, outcome.status, outcome.reason, comparison, result)
