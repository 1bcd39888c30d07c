"""The fused launcher against Hydra's basic one: same runs, same numbers, own output dirs."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from helpers.cli import METRICS, cli
from omegaconf import OmegaConf

from softmax_lab.cli import state
from softmax_lab.cli.launcher import FusedLauncher, start_group
from softmax_lab.config.schema import Config, DatasetConfig, OptimConfig
from softmax_lab.runs import timings
from softmax_lab.tracking import reading, run_lookup

# two batch sizes: two fused groups, trained side by side in two child processes
GRID = ("optim.lr=0.05,0.2,0.5", "optim.epochs=2,3", "optim.batch_size=50,100")


def _sweep(
    tmp: Path, digits_dir: Path, *extra: str, check: bool = True, env: dict[str, str] | None = None
):
    return cli(
        "train",
        "-m",
        "dataset=idx",
        f"dataset.path={digits_dir}",
        f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}",
        "tracking.experiment=f",
        f"hydra.sweep.dir={tmp / 'multirun'}",
        *extra,
        cwd=tmp,
        check=check,
        env=env,
    )


def _by_config(uri: str) -> dict[tuple[str, str, str], dict]:
    jobs = reading.runs_frame(uri, "f")
    return {
        (row["params.optim.lr"], row["params.optim.epochs"], row["params.optim.batch_size"]): (
            row.to_dict()
        )
        for _, row in jobs.iterrows()
    }


def _hydra_files(job_dir: Path) -> dict[str, Any]:
    """A job's .hydra files, loaded, without what differs between two sweeps' stores and
    directories (tracking keys and overrides, sweep dir, launcher, output dir, cwd)."""
    files = {
        name: yaml.safe_load((job_dir / ".hydra" / name).read_text())
        for name in ("config.yaml", "hydra.yaml", "overrides.yaml")
    }
    files["config.yaml"].pop("tracking")
    files["overrides.yaml"] = [o for o in files["overrides.yaml"] if not o.startswith("tracking")]
    h = files["hydra.yaml"]["hydra"]
    for key in ("sweep", "launcher", "overrides"):
        h.pop(key)
    h["job"].pop("override_dirname")
    h["runtime"]["choices"].pop("hydra/launcher")
    h["runtime"]["output_dir"] = Path(h["runtime"]["output_dir"]).name
    h["runtime"].pop("cwd")
    return files


@pytest.mark.slow
def test_fused_sweep_equals_basic_sweep(tmp_path: Path, digits_dir: Path) -> None:
    fused_dir, basic_dir = tmp_path / "fused", tmp_path / "basic"
    fused_dir.mkdir()
    basic_dir.mkdir()
    out = _sweep(fused_dir, digits_dir, *GRID).stdout
    assert out.count("6 jobs, 3 step sizes side by side") == 2
    _sweep(basic_dir, digits_dir, *GRID, "hydra/launcher=basic")
    fused = _by_config(f"sqlite:///{fused_dir / 'mlflow.db'}")
    basic = _by_config(f"sqlite:///{basic_dir / 'mlflow.db'}")
    assert fused.keys() == basic.keys() and len(fused) == 12
    deviation = 0.0
    for key, f in fused.items():
        b = basic[key]
        assert f["status"] == b["status"] == "FINISHED"
        assert f["tags.sl.fused"] == "true" and "column=" in f["tags.sl.fused_group"]
        assert "tags.sl.fused" not in b or b["tags.sl.fused"] != "true"
        params = {k: v for k, v in f.items() if k.startswith("params.") and "path" not in k}
        assert params == {k: b[k] for k in params}
        assert f["tags.sl.config_hash"] == b["tags.sl.config_hash"]
        for metric in METRICS:
            hf = reading.metric_history(f"sqlite:///{fused_dir / 'mlflow.db'}", f["run_id"], metric)
            hb = reading.metric_history(f"sqlite:///{basic_dir / 'mlflow.db'}", b["run_id"], metric)
            assert [s for s, _ in hf] == [s for s, _ in hb] == list(range(1, int(key[1]) + 1))
            if "loss" in metric:
                gaps = [abs(x - y) for (_, x), (_, y) in zip(hf, hb, strict=True)]
                deviation = max(deviation, *gaps)
                assert max(gaps) <= 1e-6, (key, metric, gaps)
        tf = np.load(
            run_lookup.download_artifact(
                f"sqlite:///{fused_dir / 'mlflow.db'}",
                f["run_id"],
                "params/theta.npy",
                tmp_path / "tf",
            )
        )
        tb = np.load(
            run_lookup.download_artifact(
                f"sqlite:///{basic_dir / 'mlflow.db'}",
                b["run_id"],
                "params/theta.npy",
                tmp_path / "tb",
            )
        )
        np.testing.assert_allclose(tf, tb, atol=1e-5)
    # every fused job still has its own Hydra output directory, with the files Hydra writes
    for n in range(12):
        fused_job, basic_job = fused_dir / "multirun" / str(n), basic_dir / "multirun" / str(n)
        assert _hydra_files(fused_job) == _hydra_files(basic_job)
        assert (fused_job / "softmax-lab.log").is_file()
    print(f"max loss deviation fused vs basic: {deviation:.2e}")


@pytest.mark.slow
def test_diverging_job_in_a_fused_group_fails_alone(tmp_path: Path, digits_dir: Path) -> None:
    proc = _sweep(
        tmp_path,
        digits_dir,
        "optim.lr=0.1,1e38,0.3",
        "optim.epochs=3",
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "[fused group" in proc.stdout
    jobs = _by_config(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert jobs[("1e+38", "3", "100")]["status"] == "FAILED"
    assert "diverged" in jobs[("1e+38", "3", "100")]["tags.sl.failure_reason"]
    for ok in (("0.1", "3", "100"), ("0.3", "3", "100")):
        assert jobs[ok]["status"] == "FINISHED"
        history = reading.metric_history(
            f"sqlite:///{tmp_path / 'mlflow.db'}", jobs[ok]["run_id"], "test/error"
        )
        assert len(history) == 3


@pytest.mark.slow
def test_rerun_of_a_fused_run_reproduces_exactly_in_fused_mode(
    tmp_path: Path, digits_dir: Path
) -> None:
    _sweep(tmp_path, digits_dir, "optim.lr=0.05,0.5", "optim.epochs=1,3", "optim.shuffle=true")
    jobs = _by_config(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = jobs[("0.05", "1", "100")]["run_id"]  # the shorter job of its block: a prefix snapshot
    out = cli(
        "rerun", run_id, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", cwd=tmp_path
    ).stdout
    assert "same fused mode" in out and "reproduced exactly" in out


@pytest.mark.slow
def test_fused_job_dirs_resolve_a_subdir_that_uses_the_hydra_resolver(
    tmp_path: Path, digits_dir: Path
) -> None:
    cli(
        "train",
        "-m",
        "dataset=idx",
        f"dataset.path={digits_dir}",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        "optim.lr=0.1,0.2",
        "optim.epochs=1",
        f"hydra.sweep.dir={tmp_path}/sweeps",
        "hydra.sweep.subdir=${hydra:job.name}-${hydra:job.num}",
        cwd=tmp_path,
    )
    for n in (0, 1):
        job_dir = tmp_path / "sweeps" / f"softmax-lab-{n}"
        hydra_yaml = yaml.safe_load((job_dir / ".hydra" / "hydra.yaml").read_text())
        assert hydra_yaml["hydra"]["runtime"]["output_dir"] == str(job_dir)
        assert (job_dir / "plots" / "theta.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("prestart", [True, False])
def test_groups_start_training_before_the_store_is_open_unless_told_not_to(
    tmp_path: Path, digits_dir: Path, prestart: bool
) -> None:
    timings = tmp_path / "timings.json"
    _sweep(
        tmp_path,
        digits_dir,
        "optim.lr=0.1,0.2",
        "optim.epochs=2",
        f"hydra.launcher.prestart={str(prestart).lower()}",
        env={"SOFTMAX_LAB_TIMINGS": str(timings)},
    )
    at = json.loads(timings.read_text())["at"]
    # first_job: the store, experiment and parent run exist and the launcher takes over
    assert (at["training_start"] < at["first_job"]) is prestart
    assert len(reading.runs_frame(f"sqlite:///{tmp_path / 'mlflow.db'}", "f")) == 2


def _group_configs(path: Path | None) -> list[Config]:
    dataset = DatasetConfig(name="idx", path=str(path)) if path else DatasetConfig()
    return [Config(dataset=dataset, optim=OptimConfig(lr=lr, epochs=1)) for lr in (0.1, 0.2)]


def test_start_group_loads_the_data_and_marks_the_training_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timings, "_totals", defaultdict(float))
    monkeypatch.setattr(timings, "_marks", {})
    worker = start_group([0, 1], _group_configs(None))
    assert worker is not None
    worker.stop()
    assert timings.totals()["data"] > 0 and "training_start" in timings._marks


def test_start_group_gives_none_when_the_data_cannot_be_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timings, "_marks", {})
    assert start_group([0, 1], _group_configs(tmp_path / "missing")) is None  # the jobs report it
    assert "training_start" not in timings._marks


def test_a_group_with_a_judged_job_trains_in_lockstep_replacing_a_prestarted_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configs = _group_configs(None)
    cfgs = [OmegaConf.create({"hydra": {"job": {"num": n}}}) for n in (4, 5)]  # Hydra job nums
    launcher = FusedLauncher()
    launcher.prestart(configs)
    prestarted = launcher._prestarted[(0, 1)]
    assert not prestarted.lockstep
    monkeypatch.setattr(state, "judges", {5: lambda m: False})  # the sweeper's, by job number
    worker = launcher._worker([0, 1], cfgs, configs)
    try:
        assert worker is not None and worker is not prestarted and worker.lockstep
        assert not prestarted._process.is_alive()  # stopped, not left training
    finally:
        if worker is not None:
            worker.stop()
    launcher.prestart(configs)
    monkeypatch.setattr(state, "judges", {})
    unjudged = launcher._worker([0, 1], cfgs, configs)
    assert unjudged is not None
    unjudged.stop()
    assert not unjudged.lockstep
