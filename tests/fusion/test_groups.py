"""Which jobs fuse, their plan, and starting a group's training in a child process."""

from __future__ import annotations

from pathlib import Path

from softmax_lab.config.schema import Config, DatasetConfig, ModelConfig, OptimConfig
from softmax_lab.core.training import EpochMetrics
from softmax_lab.fusion.groups import fusion_groups, group_plan, start_worker


def _cfg(
    lr: float, epochs: int, batch: int = 100, model: str = "softmax", path: str | None = None
) -> Config:
    dataset = DatasetConfig(name="idx", path=path) if path else DatasetConfig(name="mnist_5k")
    return Config(
        dataset=dataset,
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
    worker = start_worker([0, 1], configs)
    assert worker is not None
    epochs = [(j, e.epoch) for j, e in worker.events() if isinstance(e, EpochMetrics)]
    assert sorted(epochs) == [(0, 1), (1, 1), (1, 2)]


def test_start_worker_gives_none_when_the_data_cannot_be_loaded(tmp_path: Path) -> None:
    configs = [_cfg(0.1, 1, path=str(tmp_path / "missing")), _cfg(0.2, 1, path=str(tmp_path))]
    assert start_worker([0, 1], configs) is None  # the jobs report the missing files themselves
