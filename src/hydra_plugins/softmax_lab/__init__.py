"""Hydra finds plugins only under the ``hydra_plugins`` namespace: softmax-lab's live here.

The implementations stay in ``softmax_lab.cli``; Hydra registers a plugin under the module that
defines the class and accepts only ``hydra_plugins.*``, hence the empty subclasses here.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from softmax_lab.cli import launcher, sweeper

__all__ = ["FusedLauncher", "SoftmaxLabSweeper"]


class SoftmaxLabSweeper(sweeper.SoftmaxLabSweeper):
    """``hydra/sweeper=softmax_lab``: see ``softmax_lab.cli.sweeper``."""


class FusedLauncher(launcher.FusedLauncher):
    """``hydra/launcher=fused``: see ``softmax_lab.cli.launcher``."""


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="softmax_lab",
    node=sweeper.SoftmaxLabSweeperConf,
    provider="softmax_lab",
)
ConfigStore.instance().store(
    group="hydra/launcher", name="fused", node=launcher.FusedLauncherConf, provider="softmax_lab"
)
