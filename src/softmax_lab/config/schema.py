"""The run configuration as plain dataclasses, and the range checks every job passes first.

These dataclasses are the schema of Hydra's structured configs (registered in
``softmax_lab.cli.hydra_setup``) and what the layers below the CLI take, so nothing below the CLI
ever sees a ``DictConfig``. ``validate`` checks values that types cannot (lr > 0, a path that
exists, …) and reports every problem at once, each naming the key, the rule and the value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from softmax_lab.core.model import MODEL_NAMES
from softmax_lab.data.sources import DATASET_NAMES
from softmax_lab.errors import ConfigError

__all__ = [
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


@dataclass
class TrackingConfig:
    """``tracking`` group: where runs are recorded."""

    uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///outputs/mlflow.db
    experiment: str = "softmax-lab"
    parent_run_id: str | None = None  # set by the sweeper for each job of a sweep
    sweep_id: str | None = None  # set by the sweeper: groups a sweep's runs


@dataclass
class Config:
    """One job: data, hypothesis, optimiser, tracking, seed."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    seed: int = 0  # initial weights (mlp) and shuffling
    resume: bool = False  # in a sweep: skip jobs that already FINISHED with the same config hash


def _rules(cfg: Config) -> list[str]:
    """Every broken rule of ``cfg`` as ``key must …, got value``."""
    problems = []
    if cfg.dataset.name not in DATASET_NAMES:
        problems.append(
            f"dataset.name must be one of {', '.join(DATASET_NAMES)}, got {cfg.dataset.name!r}"
        )
    if cfg.dataset.name == "idx":
        if not cfg.dataset.path:
            problems.append("dataset.path must be set for dataset=idx, got None")
        elif not Path(cfg.dataset.path).expanduser().is_dir():
            problems.append(f"dataset.path must be an existing directory, got {cfg.dataset.path!r}")
    if cfg.dataset.split_seed < 0:
        problems.append(f"dataset.split_seed must be >= 0, got {cfg.dataset.split_seed}")
    if cfg.model.name not in MODEL_NAMES:
        problems.append(
            f"model.name must be one of {', '.join(MODEL_NAMES)}, got {cfg.model.name!r}"
        )
    if cfg.model.hidden_dim < 1:
        problems.append(f"model.hidden_dim must be >= 1, got {cfg.model.hidden_dim}")
    if cfg.optim.name != "sgd":
        problems.append(f"optim.name must be 'sgd', got {cfg.optim.name!r}")
    if not cfg.optim.lr > 0 or cfg.optim.lr == float("inf"):
        problems.append(f"optim.lr must be > 0 and finite, got {cfg.optim.lr}")
    if cfg.optim.batch_size < 1:
        problems.append(f"optim.batch_size must be >= 1, got {cfg.optim.batch_size}")
    if cfg.optim.epochs < 1:
        problems.append(f"optim.epochs must be >= 1, got {cfg.optim.epochs}")
    if cfg.seed < 0:
        problems.append(f"seed must be >= 0, got {cfg.seed}")
    if not cfg.tracking.experiment:
        problems.append("tracking.experiment must be a non-empty name, got ''")
    return problems


def validate(cfg: Config) -> Config:
    """Return ``cfg`` unchanged if every rule holds; else raise one ``ConfigError`` listing all.

    Raises
    ------
    ConfigError
        e.g. ``optim.lr must be > 0 and finite, got -0.1``.
    """
    problems = _rules(cfg)
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    return cfg


def config_from_dict(d: dict[str, Any]) -> Config:
    """Build a ``Config`` from a plain nested dict (e.g. a logged ``config.yaml``).

    Unknown keys raise ``ConfigError`` naming them; missing keys take their defaults.
    """
    groups: dict[str, type[Any]] = {
        "dataset": DatasetConfig,
        "model": ModelConfig,
        "optim": OptimConfig,
        "tracking": TrackingConfig,
    }
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        if key in groups:
            unknown = sorted(set(value) - {f.name for f in dataclasses.fields(groups[key])})
            if unknown:
                raise ConfigError(f"unknown keys in {key}: {', '.join(unknown)}")
            kwargs[key] = groups[key](**value)
        elif key in ("seed", "resume"):
            kwargs[key] = value
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


def config_hash(cfg: Config, dataset_fingerprint: str) -> str:
    """SHA-256 of what determines a run's numbers: the flattened config and the data.

    ``dataset.path`` and ``dataset.cache_dir`` are left out (the fingerprint identifies the data
    wherever it lies); so are ``tracking`` and ``resume``.
    """
    params = {
        k: v for k, v in flatten(cfg).items() if k not in ("dataset.path", "dataset.cache_dir")
    }
    blob = json.dumps({"params": params, "data": dataset_fingerprint}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
