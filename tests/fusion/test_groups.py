"""Which jobs fuse, their plan, and starting a group's training in a child process."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from softmax_lab.config.schema import Config, DatasetConfig, ModelConfig, OptimConfig
from softmax_lab.core.training import EpochMetrics
from softmax_lab.data.sources import load_dataset
from softmax_lab.fusion.groups import fusion_groups, group_plan, start_worker


def _cfg(lr: float, epochs: int, batch: int = 100, model: str = "softmax") -> Config:
    return Config(
        dataset=DatasetConfig(name="mnist_5k"),
        model=ModelConfig(name=model),
        optim=OptimConfig(lr=lr, epochs=epochs, batch_size=batch),
    )


def test_fusion_groups_split_by_everything_but_lr_and_epochs() -> None:
    configs = [
        _cfg(0.1, 3),
        _cfg(0.2, 5),
        _cfg(0.1, 3, batch=50),
        _cfg(0.1, 3, model="mlp"),
        _cfg(0.5, 1),
    ]
    assert fusion_groups(configs) == [[0, 1, 4], [2], [3]]


def test_group_plan_follows_the_group_order() -> None:
    configs = [_cfg(0.2, 2), _cfg(9.0, 9, batch=50), _cfg(0.1, 3), _cfg(0.2, 1)]
    plan = group_plan([0, 2, 3], configs)
    assert plan.lrs == (0.1, 0.2) and plan.job_epochs == (2, 3, 1)
    assert [plan.lrs[c] for c in plan.column] == [0.2, 0.1, 0.2]


def test_start_worker_trains_the_group_in_a_child_process() -> None:
    configs = [_cfg(0.1, 1), _cfg(0.2, 2)]
    worker = start_worker([0, 1], configs, load_dataset("mnist_5k"))
    assert worker is not None
    epochs = [(j, e.epoch) for j, e in worker.events() if isinstance(e, EpochMetrics)]
    assert sorted(epochs) == [(0, 1), (1, 1), (1, 2)]


# what the jobs of a group may differ in; every other key of the config keeps jobs apart (the
# explosion bound and policy judge a job's history after training, so they may differ too)
MAY_DIFFER = {"optim.lr", "optim.epochs", "optim.max_train_loss", "optim.on_explode", "resume"}


def _other(value: Any) -> Any:
    """A different value of the same type (a new key of another type fails here, not silently)."""
    if value is None:
        return "other"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "-other"
    raise TypeError(f"add a way to vary a {type(value).__name__} config value")


def _changed(cfg: Config, key: str) -> Config:
    """A copy of ``cfg`` with the flattened ``key`` (``group.name`` or ``name``) changed."""
    group, _, name = key.rpartition(".")
    if not group:
        return dataclasses.replace(cfg, **{name: _other(getattr(cfg, name))})
    section = getattr(cfg, group)
    new = dataclasses.replace(section, **{name: _other(getattr(section, name))})
    return dataclasses.replace(cfg, **{group: new})


def _keys(cfg: Config) -> list[str]:
    """Every flattened key of the config, from its dataclass fields (tracking included)."""
    keys = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            keys += [f"{f.name}.{g.name}" for g in dataclasses.fields(value)]
        else:
            keys.append(f.name)
    return keys


def test_keys_cover_every_group_of_the_config() -> None:
    keys = _keys(Config())
    assert {k.split(".")[0] for k in keys} >= {"dataset", "model", "optim", "tracking", "seed"}
    assert set(keys) >= MAY_DIFFER


@pytest.mark.parametrize("key", [k for k in _keys(Config()) if k not in MAY_DIFFER])
def test_jobs_differing_in_any_other_key_do_not_fuse(key: str) -> None:
    base = Config()
    other_lr = dataclasses.replace(base, optim=dataclasses.replace(base.optim, lr=0.5, epochs=3))
    changed = _changed(base, key)
    assert changed != base
    assert fusion_groups([base, other_lr, changed]) == [[0, 1], [2]]
    if key != "model.name":  # another model never fuses, not even with its own kind
        assert fusion_groups([changed, _changed(other_lr, key)]) == [[0, 1]]


@pytest.mark.parametrize("key", sorted(MAY_DIFFER))
def test_jobs_differing_only_in_step_size_epochs_explosion_check_or_resume_fuse(key: str) -> None:
    base = Config()
    assert fusion_groups([base, _changed(base, key)]) == [[0, 1]]


def test_only_softmax_regression_fuses() -> None:
    mlp = Config(model=ModelConfig(name="mlp"))
    assert fusion_groups([mlp, mlp]) == [[0], [1]]
