"""Hydra finds plugins only under the ``hydra_plugins`` namespace: softmax-lab's live here.

The implementations stay in ``softmax_lab.cli``; Hydra registers a plugin under the module that
defines the class and instantiates sweepers and launchers only from ``hydra_plugins.*``, hence
the empty subclasses here. Hydra runs every search-path plugin it finds for every app;
``ExperimentsSearchPath`` acts only on softmax-lab's own config.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from softmax_lab.cli import hydra_app, launcher, optuna_sweeper, ray_launcher, sweeper

__all__ = [
    "ExperimentsSearchPath",
    "ExperimentsSource",
    "FusedLauncher",
    "OptunaSweeper",
    "RayLauncher",
    "SoftmaxLabSweeper",
]


class SoftmaxLabSweeper(sweeper.SoftmaxLabSweeper):
    """``hydra/sweeper=softmax_lab``: see ``softmax_lab.cli.sweeper``."""


class OptunaSweeper(optuna_sweeper.OptunaSweeper):
    """``hydra/sweeper=optuna``: see ``softmax_lab.cli.optuna_sweeper`` (Optuna imported on
    use)."""


class FusedLauncher(launcher.FusedLauncher):
    """``hydra/launcher=fused``: see ``softmax_lab.cli.launcher``."""


class RayLauncher(ray_launcher.RayLauncher):
    """``hydra/launcher=ray``: see ``softmax_lab.cli.ray_launcher`` (Ray imported on use)."""


class ExperimentsSearchPath(hydra_app.ExperimentsSearchPath):
    """The user's experiments ahead of the packaged ones: see ``softmax_lab.cli.hydra_app``."""


class ExperimentsSource(hydra_app.ExperimentsSource):
    """The ``softmax-lab-experiments://DIR`` config source: see ``softmax_lab.cli.hydra_app``."""


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="softmax_lab",
    node=sweeper.SoftmaxLabSweeperConf,
    provider="softmax_lab",
)
ConfigStore.instance().store(
    group="hydra/launcher", name="fused", node=launcher.FusedLauncherConf, provider="softmax_lab"
)
ConfigStore.instance().store(
    group="hydra/launcher", name="ray", node=ray_launcher.RayLauncherConf, provider="softmax_lab"
)
ConfigStore.instance().store(
    group="hydra/sweeper",
    name="optuna",
    node=optuna_sweeper.OptunaSweeperConf,
    provider="softmax_lab",
)
for _name, _node in (
    ("tpe", optuna_sweeper.TPESamplerConf),
    ("random", optuna_sweeper.RandomSamplerConf),
):
    ConfigStore.instance().store(
        group="hydra/sweeper/sampler", name=_name, node=_node, provider="softmax_lab"
    )
for _name, _node in (
    ("none", optuna_sweeper.NopPrunerConf),
    ("median", optuna_sweeper.MedianPrunerConf),
    ("successive_halving", optuna_sweeper.SuccessiveHalvingPrunerConf),
    ("hyperband", optuna_sweeper.HyperbandPrunerConf),
):
    ConfigStore.instance().store(
        group="hydra/sweeper/pruner", name=_name, node=_node, provider="softmax_lab"
    )
