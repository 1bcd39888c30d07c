"""A sweep's unit trained as a Ray task would train it, here without Ray: the same events as
the in-process trainers, a placement first, and a failure (not training) on other data."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from softmax_lab.config.schema import Config, DatasetConfig, ModelConfig, OptimConfig
from softmax_lab.core.training import DivergenceError, EpochMetrics, TrainResult
from softmax_lab.fusion.groups import group_plan
from softmax_lab.fusion.remote import (
    Placement,
    TrainingUnit,
    UnitFailed,
    package_version,
    train_alone,
    train_unit,
)
from softmax_lab.fusion.stacked import train_group


def _configs(path: Path, model: str = "softmax") -> tuple[Config, ...]:
    dataset = DatasetConfig(name="idx", path=str(path))
    return tuple(
        Config(dataset=dataset, model=ModelConfig(name=model, hidden_dim=8), optim=opt)
        for opt in (OptimConfig(lr=0.1, epochs=2), OptimConfig(lr=0.3, epochs=1))
    )


def test_a_fused_unit_yields_its_placement_then_what_train_group_computes(
    tmp_path: Path, write_idx_set
) -> None:
    write_idx_set(tmp_path)
    configs = _configs(tmp_path)
    data = configs[0].dataset.load()
    plan = group_plan([0, 1], configs)
    unit = TrainingUnit(configs, plan, data.fingerprint, package_version())
    placement, *events = list(train_unit(unit))
    assert isinstance(placement, Placement) and placement.pid > 0
    expected: list[tuple[int, object]] = []
    with threadpool_limits(limits=1, user_api="blas"):  # as the unit trains, and the sweeps
        train_group(
            data,
            plan,
            batch_size=100,
            shuffle=False,
            seed=0,
            on_epoch=lambda j, m: expected.append((j, m)),
            on_job_end=lambda j, r: expected.append((j, r)),
        )
    assert [(j, type(e)) for j, e in events] == [(j, type(e)) for j, e in expected]
    for (_, got), (_, want) in zip(events, expected, strict=True):
        if isinstance(got, EpochMetrics):
            assert got.train_loss == want.train_loss and got.test_error == want.test_error
        else:
            assert isinstance(got, TrainResult) and isinstance(want, TrainResult)
            np.testing.assert_array_equal(got.params["theta"], want.params["theta"])


def test_a_lone_unit_trains_as_run_job_does(tmp_path: Path, write_idx_set) -> None:
    write_idx_set(tmp_path)
    (cfg,) = _configs(tmp_path, model="mlp")[:1]
    data = cfg.dataset.load()
    unit = TrainingUnit((cfg,), None, data.fingerprint, package_version())
    *_, (j, result) = train_unit(unit)
    with threadpool_limits(limits=1, user_api="blas"):
        _, alone = train_alone(cfg, data)
    assert j == 0 and result.params.keys() == {"W1", "W2"}
    for name in ("W1", "W2"):
        np.testing.assert_array_equal(result.params[name], alone.params[name])


def test_a_unit_on_other_data_fails_naming_both_fingerprints(tmp_path: Path, write_idx_set) -> None:
    write_idx_set(tmp_path)
    configs = _configs(tmp_path)
    unit = TrainingUnit(configs, group_plan([0, 1], configs), "f" * 64, package_version())
    events = list(train_unit(unit))
    assert len(events) == 2 and isinstance(events[1], UnitFailed) and events[1].mismatch
    ours = configs[0].dataset.load().fingerprint
    assert ours[:16] in events[1].reason and "f" * 16 in events[1].reason


def test_a_unit_on_another_softmax_lab_version_does_not_train(
    tmp_path: Path, write_idx_set
) -> None:
    write_idx_set(tmp_path)
    configs = _configs(tmp_path)
    data = configs[0].dataset.load()
    unit = TrainingUnit(configs, group_plan([0, 1], configs), data.fingerprint, "0.0.0-other")
    _, failed = list(train_unit(unit))
    assert isinstance(failed, UnitFailed) and "0.0.0-other" in failed.reason


def test_a_divergence_survives_pickling_with_its_fields() -> None:
    e = DivergenceError(epoch=3, lr=10.0, loss=float("nan"), history=[])
    back = pickle.loads(pickle.dumps(e))
    assert (back.epoch, back.lr, back.history, str(back)) == (3, 10.0, [], str(e))
