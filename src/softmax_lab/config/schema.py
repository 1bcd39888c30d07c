"""The run configuration as plain dataclasses, and the range checks every job passes first.

These dataclasses are the schema of Hydra's structured configs (registered in
``softmax_lab.cli.hydra_app``) and what the layers below the CLI take, so nothing below the CLI
ever sees a ``DictConfig``. ``validate`` checks values that types cannot (lr > 0, a path that
exists, …) against the table in ``softmax_lab.config.rules`` and reports every problem at once,
each naming the key, the rule and the value. ``DatasetConfig.load()`` loads the data it names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from softmax_lab.config.rules import broken_rules
from softmax_lab.data.dataset import Dataset
from softmax_lab.data.sources import load_dataset
from softmax_lab.errors import ConfigError

__all__ = [
    "HASHED_WHEN_NOT",
    "Config",
    "DatasetConfig",
    "ModelConfig",
    "OptimConfig",
    "TrackingConfig",
    "config_from_dict",
    "config_hash",
    "flatten",
    "validate",
]


@dataclass
class DatasetConfig:
    """``dataset`` group: which data to train on."""

    name: str = "mnist_5k"  # mnist | fashion_mnist | mnist_5k | idx
    path: str | None = None  # directory of the four IDX files, for name=idx
    cache_dir: str | None = None  # downloads and parsed .npy; None: $SOFTMAX_LAB_DATA or ~/.cache
    split_seed: int = 0  # mnist_5k's stratified train/test split
    n_classes: int = 10  # k: labels must be in 0..k-1; the model has k outputs
    # training rows held out for validation (val/loss, val/error), drawn stratified by
    # split_seed; 0: none, the training set whole
    val_size: int = 0

    def load(self) -> Dataset:
        """The dataset this group names (memoised per process, as ``load_dataset``).

        Imports nothing heavy: a sweep loads its data before MLflow.
        """
        return load_dataset(
            self.name,
            path=self.path,
            cache_dir=self.cache_dir,
            split_seed=self.split_seed,
            n_classes=self.n_classes,
            val_size=self.val_size,
        )


@dataclass
class ModelConfig:
    """``model`` group: the hypothesis class."""

    name: str = "softmax"  # softmax | mlp
    hidden_dim: int = 400  # mlp only: width of the hidden layer


@dataclass
class OptimConfig:
    """``optim`` group: minibatch SGD."""

    name: str = "sgd"
    lr: float = 0.2  # step size α
    batch_size: int = 100  # B
    epochs: int = 10  # E
    shuffle: bool = False  # new example order each epoch (from seed); False = the reference
    # a run whose final train loss is above this exploded (finite, but worse than guessing);
    # None: ln(dataset.n_classes), the loss of predicting every class alike (θ = 0's loss)
    max_train_loss: float | None = None
    on_explode: str = "flag"  # flag: tag the run, still FINISHED | fail: the run FAILS


@dataclass
class TrackingConfig:
    """``tracking`` group: where runs are recorded."""

    uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///outputs/mlflow.db
    experiment: str = "softmax-lab"
    parent_run_id: str | None = None  # set by the sweeper for each job of a sweep
    sweep_id: str | None = None  # set by the sweeper: groups a sweep's runs
    # which runs log an MLflow model: "single" (a single run, a sweep's best), "all", "none"
    log_model: str = "single"


@dataclass
class Config:
    """One job: data, hypothesis, optimiser, tracking, seed."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    seed: int = 0  # initial weights (mlp) and shuffling
    resume: bool = False  # in a sweep: skip jobs that already FINISHED with the same config hash


def validate(cfg: Config) -> Config:
    """Return ``cfg`` unchanged if every rule of ``rules.RULES`` holds; else raise one
    ``ConfigError`` listing all, in table order.

    Raises
    ------
    ConfigError
        e.g. ``optim.lr must be > 0 and finite, got -0.1``.
    """
    problems = broken_rules(cfg)
    if problems:
        raise ConfigError.broken(problems)
    return cfg


def _typed(key: str, value: Any, annotation: str) -> Any:
    """``value`` if it has the field's type (an int for a float field becomes a float, as Hydra
    makes it); else ``ConfigError`` naming the key, the type and the value."""
    kinds = {"str": str, "int": int, "float": float, "bool": bool}
    allowed = [part.strip() for part in annotation.split("|")]
    if value is None and "None" in allowed:
        return None
    for kind in (kinds[a] for a in allowed if a in kinds):
        if isinstance(value, bool) and kind is not bool:
            continue  # True is an int to Python, not to a config
        if isinstance(value, kind):
            return value
        if kind is float and isinstance(value, int):
            return float(value)
    raise ConfigError(f"{key} must be {' or '.join(allowed)}, got {value!r}")


def config_from_dict(d: Mapping[str, Any]) -> Config:
    """Build a ``Config`` from a plain nested dict (e.g. a logged ``config.yaml``).

    Missing keys take their defaults. Unknown keys, a group that is not a mapping and a value
    of the wrong type raise ``ConfigError`` naming the key (Hydra checks the same for the
    command line; a ``config.yaml`` can be edited by anyone).
    """
    groups: dict[str, type[Any]] = {
        "dataset": DatasetConfig,
        "model": ModelConfig,
        "optim": OptimConfig,
        "tracking": TrackingConfig,
    }
    top = {f.name: str(f.type) for f in dataclasses.fields(Config) if f.name not in groups}
    if not isinstance(d, Mapping):
        raise ConfigError(f"a config must be a mapping of groups and keys, got {d!r}")
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        if key in groups:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{key} must be a mapping of its keys, got {value!r}")
            fields = {f.name: str(f.type) for f in dataclasses.fields(groups[key])}
            unknown = sorted(str(k) for k in set(value) - set(fields))
            if unknown:
                raise ConfigError(f"unknown keys in {key}: {', '.join(unknown)}")
            kwargs[key] = groups[key](
                **{k: _typed(f"{key}.{k}", v, fields[k]) for k, v in value.items()}
            )
        elif key in top:
            kwargs[key] = _typed(str(key), value, top[key])
        else:
            raise ConfigError(f"unknown config key {key!r}")
    return Config(**kwargs)


def flatten(cfg: Config) -> dict[str, Any]:
    """``{"optim.lr": 0.2, …, "seed": 0}``: the dotted keys logged as run parameters.

    The ``tracking`` group is left out: where a run is recorded is not part of what it is.
    """
    out: dict[str, Any] = {}
    for group, values in asdict(cfg).items():
        if group == "tracking":
            continue
        if isinstance(values, dict):
            out.update({f"{group}.{k}": v for k, v in values.items()})
        elif group != "resume":
            out[group] = values
    return out


# Keys added after runs were recorded, with the value every earlier run behaved as: hashed only
# when set to something else, so a run recorded before the key existed keeps matching its job
# (``resume=true`` skips it, ``rerun`` finds its hash unchanged). Before ``dataset.n_classes``,
# k was 10 for every set whose labels are 0..9; before the explosion check, none was flagged;
# before the validation split, every run trained on its whole training set.
HASHED_WHEN_NOT = {
    "dataset.n_classes": 10,
    "dataset.val_size": 0,
    "optim.max_train_loss": None,
    "optim.on_explode": "flag",
}


def config_hash(cfg: Config, dataset_fingerprint: str) -> str:
    """SHA-256 of what determines a run's numbers and status: the flattened config and the data.

    ``dataset.path`` and ``dataset.cache_dir`` are left out (the fingerprint identifies the data
    wherever it lies); so are ``tracking`` and ``resume``, and the keys of ``HASHED_WHEN_NOT``
    while they hold the value runs had before those keys existed.
    """
    params = {
        k: v
        for k, v in flatten(cfg).items()
        if k not in ("dataset.path", "dataset.cache_dir")
        and not (k in HASHED_WHEN_NOT and v == HASHED_WHEN_NOT[k])
    }
    blob = json.dumps({"params": params, "data": dataset_fingerprint}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
