"""The config's hash and its reading back: keys added later keep older runs' hashes."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from softmax_lab.config.schema import (
    HASHED_WHEN_NOT,
    Config,
    DatasetConfig,
    OptimConfig,
    config_from_dict,
    config_hash,
    flatten,
)

# A job's params as runs logged them before dataset.n_classes, dataset.val_size,
# optim.max_train_loss and optim.on_explode existed (dataset.path and dataset.cache_dir were
# never hashed).
BEFORE = {
    "dataset.name": "mnist_5k",
    "dataset.split_seed": 0,
    "model.name": "softmax",
    "model.hidden_dim": 400,
    "optim.name": "sgd",
    "optim.lr": 0.2,
    "optim.batch_size": 100,
    "optim.epochs": 10,
    "optim.shuffle": False,
    "seed": 0,
}


def test_default_new_keys_leave_the_hash_of_earlier_runs_unchanged() -> None:
    blob = json.dumps({"params": BEFORE, "data": "f" * 64}, sort_keys=True)
    assert config_hash(Config(), "f" * 64) == hashlib.sha256(blob.encode()).hexdigest()


def test_hashed_when_not_holds_the_new_keys_defaults() -> None:
    defaults = flatten(Config())
    assert {k: defaults[k] for k in HASHED_WHEN_NOT} == HASHED_WHEN_NOT


@pytest.mark.parametrize(
    "cfg",
    [
        Config(dataset=DatasetConfig(n_classes=12)),
        Config(dataset=DatasetConfig(val_size=500)),
        Config(optim=OptimConfig(max_train_loss=5.0)),
        Config(optim=OptimConfig(on_explode="fail")),
    ],
    ids=["n_classes", "val_size", "max_train_loss", "on_explode"],
)
def test_a_new_key_set_away_from_its_default_changes_the_hash(cfg: Config) -> None:
    assert config_hash(cfg, "f" * 64) != config_hash(Config(), "f" * 64)


def test_a_config_logged_before_the_new_keys_reads_back_with_their_defaults() -> None:
    logged = dataclasses.asdict(Config())
    for group, key in (
        ("dataset", "n_classes"),
        ("dataset", "val_size"),
        ("optim", "max_train_loss"),
        ("optim", "on_explode"),
    ):
        del logged[group][key]
    cfg = config_from_dict(logged)
    assert (cfg.dataset.n_classes, cfg.optim.max_train_loss, cfg.optim.on_explode) == (
        10,
        None,
        "flag",
    )
    assert cfg.dataset.val_size == 0
