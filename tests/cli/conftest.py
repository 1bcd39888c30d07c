"""Fixtures of the command-line tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from softmax_lab.cli.hydra_app import CONF_DIR, register_configs


@pytest.fixture
def hydra_conf() -> Iterator[None]:
    """Hydra initialised on the packaged config directory, for ``hydra.compose`` in a test."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()
