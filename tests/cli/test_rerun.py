"""``softmax-lab rerun`` end to end (``review.rerun``), and ``prepare_rerun`` on a real run.

The pure parts have their own tests: ``test_rerun_compare.py`` and ``test_rerun_plan.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import yaml
from helpers.cli import cli
from mlflow import MlflowClient

from softmax_lab.data.idx import read_idx, write_idx
from softmax_lab.errors import RerunError
from softmax_lab.review.rerun_plan import prepare_rerun
from softmax_lab.runs.job import array_sha256
from softmax_lab.tracking import reading, run_lookup

# --- the command end to end -------------------------------------------------------------------


def _train(tmp: Path, data: Path, *overrides: str, experiment: str = "t") -> tuple[str, str]:
    """Train one job as a (one-job) sweep in ``tmp``; return (store URI, run id)."""
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    cli(
        "train",
        "-m",
        "dataset=idx",
        f"dataset.path={data}",
        f"tracking.uri={uri}",
        f"tracking.experiment={experiment}",
        f"hydra.sweep.dir={tmp / 'multirun'}",
        *overrides,
        cwd=tmp,
    )
    (run_id,) = reading.runs_frame(uri, experiment)["run_id"]
    return uri, run_id


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> tuple[Path, str, str]:
    """A store holding one finished softmax job of a sweep: (working dir, URI, run id)."""
    tmp = tmp_path_factory.mktemp("rerun")
    uri, run_id = _train(tmp, digits_dir, "optim.epochs=3", "optim.lr=0.3")
    return tmp, uri, run_id


def _reruns(uri: str, run_id: str) -> list[run_lookup.LoggedRun]:
    frame = reading.runs_frame(uri, "t")
    if "tags.sl.rerun_of" not in frame:
        return []
    ids = frame.loc[frame["tags.sl.rerun_of"] == run_id, "run_id"]
    return [run_lookup.run_info(uri, i) for i in ids]


@pytest.mark.slow
def test_rerun_of_a_finished_run_reproduces_exactly(trained: tuple[Path, str, str]) -> None:
    tmp, uri, run_id = trained
    original = run_lookup.run_info(uri, run_id)
    theta = np.load(run_lookup.download_artifact(uri, run_id, "params/theta.npy", tmp / "theta"))
    assert original.tags["sl.sha256.theta"] == array_sha256(theta)  # logged by the job
    before = {r.run_id for r in _reruns(uri, run_id)}
    proc = cli("rerun", run_id[:8], "--tracking-uri", uri, cwd=tmp)
    assert proc.stdout.rstrip().endswith("reproduced exactly"), proc.stdout
    assert "theta: sha256 match" in proc.stdout
    (new,) = [r for r in _reruns(uri, run_id) if r.run_id not in before]
    assert new.status == "FINISHED" and new.experiment == "t"
    assert new.tags["sl.rerun_verdict"] == "reproduced exactly"
    assert new.tags["sl.sha256.theta"] == original.tags["sl.sha256.theta"]
    # a rerun is not part of the original's sweep
    assert original.tags.get("mlflow.parentRunId") and original.tags.get("sl.sweep_id")
    assert "mlflow.parentRunId" not in new.tags and "sl.sweep_id" not in new.tags
    assert new.params == original.params
    assert list((tmp / "outputs" / "reruns").glob(f"*/*-{run_id[:8]}/plots/curves.png"))


@pytest.mark.slow
def test_rerun_with_set_reports_the_differences(trained: tuple[Path, str, str]) -> None:
    tmp, uri, run_id = trained
    before = {r.run_id for r in _reruns(uri, run_id)}
    proc = cli("rerun", run_id, "--set", "optim.lr=0.05", "--tracking-uri", uri, cwd=tmp)
    assert "| metric" in proc.stdout and "| train/loss  | 1 " in proc.stdout
    assert "theta: sha256 MISMATCH" in proc.stdout
    assert "changed (--set optim.lr=0.05): 12 of 12 per-epoch values" in proc.stdout
    assert "reproduced exactly" not in proc.stdout
    (new,) = [r for r in _reruns(uri, run_id) if r.run_id not in before]
    assert new.tags["sl.rerun_verdict"] == "changed (--set)"
    assert new.params["optim.lr"] == "0.05"


@pytest.mark.slow
def test_rerun_of_unknown_run_id_is_exit_2(trained: tuple[Path, str, str]) -> None:
    tmp, uri, _ = trained
    proc = cli(
        "rerun", "0123456789abcdef0123456789abcdef", "--tracking-uri", uri, cwd=tmp, check=False
    )
    assert proc.returncode == 2
    assert "run '0123456789abcdef0123456789abcdef' not found in sqlite:///" in proc.stderr


@pytest.mark.slow
def test_rerun_with_bad_set_key_is_exit_2_naming_valid_keys(
    trained: tuple[Path, str, str],
) -> None:
    tmp, uri, run_id = trained
    count = len(reading.runs_frame(uri, "t"))
    proc = cli(
        "rerun", run_id, "--set", "optim.lrr=0.1", "--tracking-uri", uri, cwd=tmp, check=False
    )
    assert proc.returncode == 2
    assert "unknown key 'optim.lrr'; valid keys: dataset.name" in proc.stderr
    assert "optim.lr, optim.batch_size" in proc.stderr
    assert len(reading.runs_frame(uri, "t")) == count


@pytest.mark.slow
def test_prepare_rerun_refuses_a_sweep_parent(trained: tuple[Path, str, str]) -> None:
    _, uri, run_id = trained
    parent = run_lookup.run_info(uri, run_id).tags["mlflow.parentRunId"]
    with pytest.raises(RerunError, match=r"is the parent run of sweep .*, not a job"):
        prepare_rerun(uri, parent)


@pytest.mark.slow
def test_rerun_of_mlp_with_shuffle_reproduces_exactly(tmp_path: Path, digits_dir: Path) -> None:
    uri, run_id = _train(
        tmp_path,
        digits_dir,
        "model=mlp",
        "model.hidden_dim=16",
        "optim.shuffle=true",
        "optim.epochs=2",
        "optim.lr=0.1",
        "seed=3",
    )
    client = MlflowClient(uri)
    # a run logged before parameter hashes existed: hashed from its params/W1.npy instead
    client.delete_tag(run_id, "sl.sha256.W1")
    client.set_tag(run_id, "sl.fused_group", "g7")
    proc = cli("rerun", run_id, "--tracking-uri", uri, cwd=tmp_path)
    assert proc.stdout.rstrip().endswith("reproduced exactly"), proc.stdout
    assert "note: original ran fused (group g7); rerunning alone" in proc.stdout
    assert "W1: sha256 match" in proc.stdout and "W2: sha256 match" in proc.stdout
    (new,) = _reruns(uri, run_id)
    assert new.tags["sl.rerun_verdict"] == "reproduced exactly"


@pytest.mark.slow
def test_rerun_on_changed_data_is_exit_2_and_creates_no_run(
    tmp_path: Path, digits_dir: Path
) -> None:
    data = tmp_path / "digits"
    shutil.copytree(digits_dir, data)
    uri, run_id = _train(tmp_path, data, "optim.epochs=1")
    labels = data / "train-labels-idx1-ubyte.gz"
    y = read_idx(labels).copy()
    y[:10] = (y[:10] + 1) % 10
    write_idx(labels, y)
    proc = cli("rerun", run_id, "--tracking-uri", uri, cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    logged = run_lookup.run_info(uri, run_id).tags["sl.dataset_fingerprint"]
    assert "dataset on disk has fingerprint " in proc.stderr
    assert f"the run used {logged[:12]}…" in proc.stderr
    assert len(reading.runs_frame(uri, "t")) == 1, "no run may be created for other data"


@pytest.mark.slow
def test_rerun_of_a_run_logged_before_the_newer_keys_takes_their_defaults(
    tmp_path: Path, digits_dir: Path
) -> None:
    uri, run_id = _train(tmp_path, digits_dir, "optim.epochs=2")
    # the config.yaml such a run logged: without dataset.n_classes and the explosion keys
    artifacts = Path(urlparse(MlflowClient(uri).get_run(run_id).info.artifact_uri).path)
    logged = yaml.safe_load((artifacts / "config.yaml").read_text())
    del logged["dataset"]["n_classes"]
    del logged["optim"]["max_train_loss"], logged["optim"]["on_explode"]
    (artifacts / "config.yaml").write_text(yaml.safe_dump(logged, sort_keys=False))

    plan = prepare_rerun(uri, run_id)
    assert plan.config.dataset.n_classes == 10 and plan.config.optim.on_explode == "flag"
    assert not any("config hash differs" in w for w in plan.warnings)  # the same hash
    proc = cli("rerun", run_id, "--tracking-uri", uri, cwd=tmp_path)
    assert proc.stdout.rstrip().endswith("reproduced exactly"), proc.stdout
