"""``compose_jobs`` gives every job of a sweep exactly the config Hydra's ``load_sweep_config``
gives it, hydra node included, while composing with Hydra once per family of jobs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hydra import version
from hydra._internal.callbacks import Callbacks
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import setup_globals
from hydra.errors import ConfigCompositionException
from hydra.types import HydraContext, RunMode
from hydra.version import VersionBase
from omegaconf import DictConfig, ListConfig, OmegaConf

import hydra_plugins.softmax_lab  # noqa: F401  (registers our sweeper and launcher)
from softmax_lab.cli.compose import compose_jobs, plan_job
from softmax_lab.cli.hydra_app import CONF_DIR, register_configs
from softmax_lab.cli.sweeper import SoftmaxLabSweeper


class CountingLoader(ConfigLoaderImpl):
    """Hydra's config loader, counting its full compositions."""

    calls = 0

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> Any:
        self.calls += 1
        return super().load_sweep_config(master_config, sweep_overrides)


@pytest.fixture
def loader() -> Iterator[CountingLoader]:
    """A real loader over conf/, as ``hydra.main`` builds it."""
    base = VersionBase.instance()
    previous = base.version_base
    version.setbase("1.3")
    register_configs()
    yield CountingLoader(config_search_path=create_config_search_path(str(CONF_DIR)))
    base.version_base = previous


def _sweep(loader: ConfigLoaderImpl, *argv: str) -> tuple[DictConfig, SoftmaxLabSweeper, list]:
    """The master config, our sweeper on it, and its jobs, as ``train -m ARGV`` has them."""
    master = loader.load_configuration(
        config_name="config", overrides=list(argv), run_mode=RunMode.MULTIRUN
    )
    # Built as Hydra would (``hydra.sweeper`` holds its arguments) but without __init__: Hydra's
    # plugin scan re-executes basic_sweeper.py, and BasicSweeper.__init__ then rejects a
    # subclass of the class imported before the scan (this module imports it at collection).
    sweeper = SoftmaxLabSweeper.__new__(SoftmaxLabSweeper)
    params = master.hydra.sweeper.params
    params = {} if params is None else OmegaConf.to_container(params)
    sweeper.params, sweeper.max_batch_size = params, None
    sweeper.hydra_context = HydraContext(config_loader=loader, callbacks=Callbacks())
    sweeper.config = master
    arguments = OmegaConf.to_container(master.hydra.overrides.task)
    assert isinstance(arguments, list)
    return master, sweeper, sweeper._expand(arguments)


def _metadata(node: Any, path: str = "") -> dict[str, tuple[Any, ...]]:
    """Every node's type, declared type and flags: what ``to_container`` does not show."""
    m = node._metadata
    out = {
        path: (
            type(node).__name__,
            m.ref_type,
            m.object_type,
            m.optional,
            dict(m.flags),
            getattr(m, "key_type", None),
            getattr(m, "element_type", None),
        )
    }
    if isinstance(node, DictConfig | ListConfig) and not (
        node._is_none() or node._is_missing() or node._is_interpolation()
    ):
        keys: list[Any] = list(node.keys() if isinstance(node, DictConfig) else range(len(node)))
        for k in keys:
            out.update(_metadata(node._get_node(k), f"{path}.{k!s}"))
    return out


def _assert_same(fast: DictConfig, hydra: DictConfig) -> None:
    assert OmegaConf.to_container(fast, resolve=False) == OmegaConf.to_container(
        hydra, resolve=False
    )
    assert _metadata(fast) == _metadata(hydra)
    assert dict(fast._metadata.resolver_cache) == dict(hydra._metadata.resolver_cache)


SWEEPS = {
    "values only": (["optim.lr=0.05,0.1", "optim.batch_size=50,100"], 4, 1),
    "groups and values": (["model=softmax,mlp", "optim.lr=0.1,0.2"], 4, 2),
    "experiment's params": (["+experiment=demo", "seed=3"], 12, 1),
    "quoted strings and null": (
        ["dataset.cache_dir=null,'/tmp/a b'", "tracking.experiment='x,y',\"p=q\"", "seed=1"],
        4,
        1,
    ),
    "seed, hydra overrides, excluded dirname key": (
        [
            "seed=1,2",
            "optim.shuffle=true,false",
            "hydra/launcher=basic",
            "hydra.sweep.dir=/tmp/sweep",
            "hydra.job.config.override_dirname.exclude_keys=[seed]",
        ],
        4,
        1,
    ),
    "interpolation and an int for a float": (["optim.epochs=3,${seed}", "optim.lr=1"], 2, 1),
    "a + on a value: Hydra alone": (["+extra=[1,2]", "optim.lr=0.1,0.2"], 2, 2),
    "a dict value: Hydra alone": (["optim={lr:0.3}", "seed=1,2"], 2, 2),
    "a search path: Hydra alone": (
        [f"hydra.searchpath=[file://{CONF_DIR / 'experiment'}]", "optim.lr=0.1,0.2"],
        2,
        2,
    ),
}


@pytest.mark.parametrize("name", SWEEPS)
def test_compose_jobs_equals_hydra_for_every_job(loader: CountingLoader, name: str) -> None:
    argv, n_jobs, n_compositions = SWEEPS[name]
    master, _, jobs = _sweep(loader, *argv)
    assert len(jobs) == n_jobs
    loader.calls = 0
    fast = compose_jobs(loader, master, jobs)
    assert loader.calls == n_compositions
    for job, cfg in zip(jobs, fast, strict=True):
        _assert_same(cfg, loader.load_sweep_config(master, job))


def test_jobs_keep_the_masters_resolved_timestamps(loader: CountingLoader) -> None:
    setup_globals()  # the ${now:} resolver, as Hydra registers it
    master, _, jobs = _sweep(loader, "optim.lr=0.05,0.1,0.2")
    sweep_dir = master.hydra.sweep.dir  # resolved (and cached) before the jobs, as in a run
    fast = compose_jobs(loader, master, jobs)
    for job, cfg in zip(jobs, fast, strict=True):
        hydra = loader.load_sweep_config(master, job)
        _assert_same(cfg, hydra)
        assert cfg._metadata.resolver_cache  # the master's ${now:…} values, copied
        assert cfg.hydra.sweep.dir == hydra.hydra.sweep.dir == sweep_dir


def test_jobs_get_their_own_copies(loader: CountingLoader) -> None:
    master, _, jobs = _sweep(loader, "optim.lr=0.05,0.1")
    first, second = compose_jobs(loader, master, jobs)
    first.optim.epochs = 99
    first.hydra.overrides.task.append("x=1")
    assert second.optim.epochs == 10 and list(second.hydra.overrides.task) == ["optim.lr=0.1"]
    assert (first.optim.lr, second.optim.lr) == (0.05, 0.1)


def test_sweeper_keeps_the_fast_configs_for_the_launcher(loader: CountingLoader) -> None:
    master, sweeper, jobs = _sweep(loader, "model=softmax,mlp", "optim.lr=0.1,0.2,0.4")
    loader.calls = 0
    configs = sweeper._compose_and_validate(jobs)
    assert loader.calls == 2
    assert [(c.model.name, c.optim.lr) for c in configs] == [
        (m, lr) for m in ("softmax", "mlp") for lr in (0.1, 0.2, 0.4)
    ]
    for job, cfg in zip(jobs, sweeper._composed, strict=True):
        _assert_same(cfg, loader.load_sweep_config(master, job))


def test_bad_type_on_the_fast_path_raises_naming_the_key(loader: CountingLoader) -> None:
    master, _, jobs = _sweep(loader, "optim.batch_size=1,big")
    with pytest.raises(ConfigCompositionException, match=r"optim\.batch_size=big") as fast:
        compose_jobs(loader, master, jobs)
    with pytest.raises(ConfigCompositionException) as hydra:
        loader.load_sweep_config(master, jobs[1])
    assert str(fast.value) == str(hydra.value)
    assert str(fast.value.__cause__) == str(hydra.value.__cause__)
    assert "optim.batch_size" in str(fast.value.__cause__)


def test_unknown_key_on_the_fast_path_raises_as_hydra_does(loader: CountingLoader) -> None:
    master, _, jobs = _sweep(loader, "optim.lrr=0.1,0.2")
    with pytest.raises(ConfigCompositionException, match=r"Could not override 'optim\.lrr'"):
        compose_jobs(loader, master, jobs)


@pytest.mark.parametrize(
    ("job", "shared", "values"),
    [
        (["optim.lr=0.1", "seed=2"], [], ["optim.lr", "seed"]),
        (["model=mlp", "optim.lr=0.1"], ["model=mlp"], ["optim.lr"]),
        (
            ["+experiment=demo", "dataset.cache_dir=null"],
            ["+experiment=demo"],
            ["dataset.cache_dir"],
        ),
        (
            ["hydra/launcher=basic", "hydra.job.name=x"],
            ["hydra/launcher=basic", "hydra.job.name=x"],
            [],
        ),
        (["~model", "seed=1"], ["~model"], ["seed"]),
    ],
)
def test_plan_job_splits_shared_overrides_from_values(
    loader: CountingLoader, job: list[str], shared: list[str], values: list[str]
) -> None:
    plan = plan_job(loader, OverridesParser.create(), job)
    assert plan is not None
    assert list(plan.shared) == shared
    assert [o.key_or_group for o in plan.values] == values


@pytest.mark.parametrize(
    "override",
    [
        "+optim.momentum=0.9",
        "++optim.lr=0.1",
        "~dataset.path",
        "optim={lr:0.1}",
        "hydra.searchpath=[file:///tmp]",
        "hydra.overrides.task=[a]",
    ],
)
def test_plan_job_leaves_other_overrides_to_hydra(loader: CountingLoader, override: str) -> None:
    assert plan_job(loader, OverridesParser.create(), ["optim.lr=0.1", override]) is None
