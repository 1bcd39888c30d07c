"""Benchmark: composing and validating a sweep's jobs, Hydra per job vs ``compose_jobs``.

Run: ``python benchmarks/compose_sweep.py [--reps 7]``. Times the sweeper's
``_compose_and_validate`` on a 27-job grid (``optim.lr`` × ``optim.batch_size`` ×
``optim.epochs``, 3 values each) against the loop it replaced (``load_sweep_config`` for every
job, then the same validation), interleaved, in this one process, and checks the two give
equal configs.
"""

from __future__ import annotations

import argparse

from _common import report, side_by_side
from hydra import version
from hydra._internal.callbacks import Callbacks
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.core.plugins import Plugins
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig, OmegaConf

from softmax_lab.cli.convert import to_config
from softmax_lab.cli.hydra_app import CONF_DIR, register_configs
from softmax_lab.config.schema import Config, validate

GRID = ("optim.lr=0.05,0.1,0.2", "optim.batch_size=50,100,200", "optim.epochs=3,5,10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="repetitions per variant (median)")
    args = parser.parse_args()
    version.setbase("1.3")
    register_configs()
    # the loader scans Hydra's plugins, which registers ours (hydra_plugins.softmax_lab)
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONF_DIR)))
    master = loader.load_configuration(
        config_name="config", overrides=list(GRID), run_mode=RunMode.MULTIRUN
    )
    sweeper = Plugins.instance().instantiate_sweeper(
        hydra_context=HydraContext(config_loader=loader, callbacks=Callbacks()),
        task_function=lambda cfg: None,
        config=master,
    )
    jobs = sweeper._expand(list(GRID))  # type: ignore[attr-defined]

    def per_job() -> list[DictConfig]:  # the sweeper's loop before compose_jobs
        composed = [loader.load_sweep_config(master, job) for job in jobs]
        configs: list[Config] = [validate(to_config(c)) for c in composed]
        assert len(configs) == len(jobs)
        return composed

    def fast() -> list[DictConfig]:
        sweeper._compose_and_validate(jobs)  # type: ignore[attr-defined]
        return sweeper._composed  # type: ignore[attr-defined]

    as_dicts = lambda cfgs: [OmegaConf.to_container(c, resolve=False) for c in cfgs]  # noqa: E731
    assert as_dicts(per_job()) == as_dicts(fast()), "compose_jobs differs from Hydra"
    print(f"compose and validate {len(jobs)} jobs ({' '.join(GRID)}):")
    report(
        side_by_side(
            {"load_sweep_config per job": per_job, "compose_jobs (one per family)": fast},
            args.reps,
        ),
        "load_sweep_config per job",
    )


if __name__ == "__main__":
    main()
