"""Rebuild the job of a logged run for a rerun, and check it before anything runs.

``prepare_rerun`` rebuilds the job from what the original run logged (``config.yaml``,
``overrides.yaml``, the ``sl.dataset_fingerprint`` tag), applies ``--set`` changes
(``apply_sets``) and checks that the dataset on disk has the fingerprint the run used; it creates
nothing, so every mistake (unknown run, bad key, other data) stops before a run exists. Its
``RerunPlan`` carries the warnings (``environment_warnings``: code version, NumPy, BLAS, threads)
and notes the CLI shows; ``softmax_lab.review.rerun.execute_rerun`` runs it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from softmax_lab.config.schema import Config, config_from_dict, config_hash, flatten, validate
from softmax_lab.errors import ConfigError, DatasetError, IdxFormatError, RerunError
from softmax_lab.tracking import provenance, run_lookup, store

__all__ = [
    "RerunPlan",
    "apply_sets",
    "environment_warnings",
    "prepare_rerun",
]

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
DATA_KEYS = ("dataset.name", "dataset.split_seed", "dataset.val_size")


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

    original: run_lookup.LoggedRun
    config: Config
    overrides: list[str]  # the original's command-line overrides, then the --set items
    changed: dict[str, Any]  # keys --set changed in what the run is (not where its data lies)
    fingerprint: str  # of the dataset on disk
    logged_fingerprint: str  # the original's sl.dataset_fingerprint (differs only after --set)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fused_group: str | None = None  # the original's fused plan, replayed by the rerun


def _logged_yaml(original: run_lookup.LoggedRun, path: str) -> Any:
    text = run_lookup.read_text_artifact(original.uri, original.run_id, path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RerunError(f"run {original.run_id}: {path} is not valid YAML ({err})") from err


def _read_original(uri: str | None, run_id: str) -> tuple[run_lookup.LoggedRun, Config, list[str]]:
    original = run_lookup.run_info(uri, run_id)
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
    store.check_usable(original.uri, write=True)  # the rerun is recorded there
    new_cfg, changed = apply_sets(cfg, sets)
    notes = []
    stopped = original.tags.get("sl.stopped_at_epoch", "")
    if (
        original.tags.get("sl.pruned") == "true"
        and stopped.isdigit()
        and "optim.epochs" not in changed
    ):
        # a search stopped it early: its θ and metrics are those of its first `stopped` epochs
        optim = dataclasses.replace(new_cfg.optim, epochs=int(stopped))
        new_cfg = dataclasses.replace(new_cfg, optim=optim)
        notes.append(
            f"original was stopped early (pruned by a search) after epoch {stopped} of "
            f"{cfg.optim.epochs}; the rerun trains {stopped} epochs"
        )
    validate(new_cfg)
    try:
        data = new_cfg.dataset.load()
    except (DatasetError, IdxFormatError, OSError) as err:
        raise RerunError(f"cannot load the run's dataset {new_cfg.dataset.name!r}: {err}") from err
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
    here = provenance.environment_tags()
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
