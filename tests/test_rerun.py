"""``softmax-lab rerun``: the pure comparison and ``--set`` parsing, then the command end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from test_cli import cli

from softmax_lab import tracking
from softmax_lab.config import Config
from softmax_lab.idx import read_idx, write_idx
from softmax_lab.job import array_sha256
from softmax_lab.rerun import (
    RerunError,
    RunRecord,
    apply_sets,
    compare_records,
    environment_warnings,
    format_differences,
    prepare_rerun,
    verdict,
)

# --- the comparison (pure) --------------------------------------------------------------------


def _record(
    *,
    train_loss: tuple[float, ...] = (0.5, 0.4, 0.3),
    seconds: tuple[float, ...] = (0.1, 0.1, 0.1),
    theta: str | None = "ab" * 32,
    status: str = "FINISHED",
) -> RunRecord:
    steps = lambda values: [(i + 1, v) for i, v in enumerate(values)]  # noqa: E731
    history = {
        "train/loss": steps(train_loss),
        "train/error": steps((0.2, 0.1, 0.05)[: len(train_loss)]),
        "test/loss": steps((0.6, 0.5, 0.4)[: len(train_loss)]),
        "test/error": steps((0.3, 0.2, 0.1)[: len(train_loss)]),
        "epoch_seconds": steps(seconds),
    }
    return RunRecord(status, history, {} if theta is None else {"theta": theta})


def test_compare_records_identical_runs_reproduce_exactly() -> None:
    c = compare_records(_record(), _record())
    assert c.identical and c.differences == [] and c.compared == 12
    assert verdict(c, changed=False) == "reproduced exactly"
    assert [p.match for p in c.params] == [True]


def test_compare_records_ignores_epoch_seconds_but_reports_it() -> None:
    c = compare_records(_record(seconds=(0.1, 0.2, 0.3)), _record(seconds=(9.0, 9.0, 9.0)))
    assert c.identical and verdict(c, changed=False) == "reproduced exactly"
    assert c.seconds == pytest.approx((0.6, 27.0))
    assert any(
        line.startswith("epoch_seconds (timing, not compared)") for line in format_differences(c)
    )


def test_compare_records_finds_a_last_bit_difference() -> None:
    nudged = float(np.nextafter(0.4, 1.0))
    c = compare_records(_record(), _record(train_loss=(0.5, nudged, 0.3)))
    assert not c.identical and verdict(c, changed=False) == "differs"
    (d,) = c.differences
    assert (d.metric, d.epoch, d.original, d.rerun) == ("train/loss", 2, 0.4, nudged)
    table = "\n".join(format_differences(c))
    assert f"| train/loss | 2     | 0.4      | {nudged!r} |" in table


def test_compare_records_reports_missing_epochs_and_params() -> None:
    c = compare_records(_record(), _record(train_loss=(0.5, 0.4), theta=None, status="FAILED"))
    assert not c.identical
    assert ("train/loss", 3, 0.3, None) in [
        (d.metric, d.epoch, d.original, d.rerun) for d in c.differences
    ]
    (p,) = c.params
    assert p.original == "ab" * 32 and p.rerun is None and not p.match
    lines = format_differences(c)
    assert "status: original FINISHED, rerun FAILED" in lines
    assert "theta: sha256 MISMATCH (not logged by the rerun)" in lines


def test_compare_records_theta_hash_alone_decides() -> None:
    c = compare_records(_record(), _record(theta="cd" * 32))
    assert c.differences == [] and not c.identical
    assert verdict(c, changed=False) == "differs"
    assert "theta: sha256 MISMATCH (original abababababababab…, rerun cdcdcdcdcdcdcdcd…)" in (
        format_differences(c)
    )


def test_compare_records_nan_equals_nan() -> None:
    nan = float("nan")
    c = compare_records(_record(train_loss=(0.5, nan, nan)), _record(train_loss=(0.5, nan, nan)))
    assert c.identical


def test_verdict_of_a_changed_config_is_changed_whatever_the_numbers() -> None:
    same = compare_records(_record(), _record())
    assert verdict(same, changed=True) == "changed (--set)"


def test_format_differences_caps_the_table() -> None:
    many = tuple(float(i) for i in range(30))
    c = compare_records(_record(train_loss=many), _record(train_loss=tuple(v + 1 for v in many)))
    lines = format_differences(c, limit=20)
    assert sum(line.startswith("| train/loss") for line in lines) == 20
    assert f"… and {len(c.differences) - 20} more differing values" in lines


# --- --set and environment warnings (pure) ----------------------------------------------------


def test_apply_sets_converts_by_field_type_and_reports_changes() -> None:
    cfg, changed = apply_sets(
        Config(),
        ["optim.lr=0.1", "optim.epochs=3", "optim.shuffle=true", "dataset.path=null", "seed=0"],
    )
    assert cfg.optim.lr == 0.1 and cfg.optim.epochs == 3 and cfg.optim.shuffle is True
    assert cfg.dataset.path is None and cfg.seed == 0
    assert changed == {"optim.lr": 0.1, "optim.epochs": 3, "optim.shuffle": True}
    assert Config().optim.lr == 0.2  # a copy: the defaults are untouched


def test_apply_sets_rejects_unknown_key_naming_the_valid_ones() -> None:
    with pytest.raises(RerunError, match=r"unknown key 'optim\.lrr'; valid keys: .*optim\.lr, "):
        apply_sets(Config(), ["optim.lrr=1"])


def test_apply_sets_rejects_tracking_keys() -> None:
    with pytest.raises(RerunError, match=r"unknown key 'tracking\.uri'"):
        apply_sets(Config(), ["tracking.uri=sqlite:///x.db"])


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("optim.lr", r"--set expects KEY=VALUE \(e\.g\. optim\.lr=0\.1\), got 'optim\.lr'"),
        ("optim.lr=fast", r"--set optim\.lr: expected a number, got 'fast'"),
        ("optim.epochs=2.5", r"--set optim\.epochs: expected an integer, got '2\.5'"),
        ("optim.shuffle=yes", r"--set optim\.shuffle: expected true or false, got 'yes'"),
    ],
)
def test_apply_sets_rejects_bad_items(item: str, message: str) -> None:
    with pytest.raises(RerunError, match=message):
        apply_sets(Config(), [item])


def test_environment_warnings_name_what_differs() -> None:
    now = {
        "sl.version": "0.1.0",
        "sl.git_commit": "abc",
        "sl.numpy": "2.1.0",
        "sl.blas": "openblas 0.3.27",
        "sl.threads": "2",
    }
    assert environment_warnings(now, now) == []
    then = {**now, "sl.numpy": "1.26.4", "sl.threads": "8"}
    del then["sl.blas"]
    warnings = environment_warnings(then, now)
    assert "NumPy differs: original 1.26.4, now 2.1.0" in warnings
    assert "BLAS thread count differs: original 8, now 2" in warnings
    assert "BLAS: not recorded by the original run (now openblas 0.3.27)" in warnings
    dirty = {**now, "sl.git_commit": "abc-dirty"}
    (warning,) = environment_warnings(dirty, dirty)
    assert "uncommitted changes" in warning


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
    (run_id,) = tracking.runs_frame(uri, experiment)["run_id"]
    return uri, run_id


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> tuple[Path, str, str]:
    """A store holding one finished softmax job of a sweep: (working dir, URI, run id)."""
    tmp = tmp_path_factory.mktemp("rerun")
    uri, run_id = _train(tmp, digits_dir, "optim.epochs=3", "optim.lr=0.3")
    return tmp, uri, run_id


def _reruns(uri: str, run_id: str) -> list[tracking.LoggedRun]:
    frame = tracking.runs_frame(uri, "t")
    if "tags.sl.rerun_of" not in frame:
        return []
    ids = frame.loc[frame["tags.sl.rerun_of"] == run_id, "run_id"]
    return [tracking.run_info(uri, i) for i in ids]


@pytest.mark.slow
def test_rerun_of_a_finished_run_reproduces_exactly(trained: tuple[Path, str, str]) -> None:
    tmp, uri, run_id = trained
    original = tracking.run_info(uri, run_id)
    theta = np.load(tracking.download_artifact(uri, run_id, "params/theta.npy", tmp / "theta"))
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
    count = len(tracking.runs_frame(uri, "t"))
    proc = cli(
        "rerun", run_id, "--set", "optim.lrr=0.1", "--tracking-uri", uri, cwd=tmp, check=False
    )
    assert proc.returncode == 2
    assert "unknown key 'optim.lrr'; valid keys: dataset.name" in proc.stderr
    assert "optim.lr, optim.batch_size" in proc.stderr
    assert len(tracking.runs_frame(uri, "t")) == count


@pytest.mark.slow
def test_prepare_rerun_refuses_a_sweep_parent(trained: tuple[Path, str, str]) -> None:
    _, uri, run_id = trained
    parent = tracking.run_info(uri, run_id).tags["mlflow.parentRunId"]
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
    logged = tracking.run_info(uri, run_id).tags["sl.dataset_fingerprint"]
    assert "dataset on disk has fingerprint " in proc.stderr
    assert f"the run used {logged[:12]}…" in proc.stderr
    assert len(tracking.runs_frame(uri, "t")) == 1, "no run may be created for other data"
