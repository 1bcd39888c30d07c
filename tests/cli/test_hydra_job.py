"""cli.hydra_job: which jobs take the light path, and which go to Hydra's own run_job.

That the light path writes the same job directory as Hydra's is checked end to end by
``test_launcher.test_fused_sweep_equals_basic_sweep``."""

from __future__ import annotations

import pytest
from hydra import compose
from hydra._internal.callbacks import Callbacks
from hydra.types import HydraContext
from omegaconf import DictConfig

from softmax_lab.cli.hydra_job import can_run_light

pytestmark = pytest.mark.usefixtures("hydra_conf")


def _config(*overrides: str) -> DictConfig:
    return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def _context(callbacks: DictConfig | None = None) -> HydraContext:
    return HydraContext(config_loader=None, callbacks=Callbacks(callbacks))  # type: ignore[arg-type]


def test_a_plain_sweep_job_takes_the_light_path() -> None:
    config = _config()
    assert can_run_light(config, _context(config))  # with conf/config.yaml's own check_run


def test_a_single_runs_config_check_is_the_one_callback_in_the_config() -> None:
    callbacks = _config().hydra.callbacks
    assert list(callbacks) == ["check_run"]
    assert callbacks.check_run._target_ == "softmax_lab.cli.run_check.CheckRunFirst"


@pytest.mark.parametrize("override", ["hydra.job.chdir=true", "+hydra.job.env_set.FOO=bar"])
def test_chdir_or_env_set_go_to_hydras_run_job(override: str) -> None:
    assert not can_run_light(_config(override), _context())


def test_hydra_callbacks_go_to_hydras_run_job() -> None:
    config = _config("+hydra.callbacks.log._target_=builtins.dict")
    assert not can_run_light(config, _context(config))
