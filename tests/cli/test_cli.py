"""The ``softmax-lab`` command end to end: real processes, real SQLite MLflow stores."""

from __future__ import annotations

import csv
import io
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import METRICS, cli, common_overrides, run_command, store_uri
from helpers.servers import clean_env, free_port

from softmax_lab.core.model import SoftmaxRegression
from softmax_lab.core.training import train
from softmax_lab.data.sources import load_dataset
from softmax_lab.tracking import reading, run_lookup


@pytest.mark.slow
def test_sweep_records_every_job_with_all_epochs_and_compare_orders_them(
    tmp_path: Path, digits_dir: Path
) -> None:
    out = cli(
        "train",
        "-m",
        *common_overrides(tmp_path, digits_dir),
        "optim.lr=0.05,0.5",
        "optim.batch_size=50,100",
        "optim.epochs=3",
        cwd=tmp_path,
    ).stdout
    assert "4 of 4 jobs finished" in out
    uri = store_uri(tmp_path)
    jobs = reading.runs_frame(uri, "t")
    assert len(jobs) == 4 and set(jobs["status"]) == {"FINISHED"}
    sweep_ids = set(jobs["sweep_id"])
    assert len(sweep_ids) == 1
    parents = reading.runs_frame(uri, "t", include_parents=True)
    parent = parents[parents["tags.sl.role"] == "sweep"]
    assert len(parent) == 1 and parent["status"].iloc[0] == "FINISHED"
    assert set(jobs["parent_run_id"]) == {parent["run_id"].iloc[0]}
    for run_id in jobs["run_id"]:
        for key in METRICS:
            history = reading.metric_history(uri, run_id, key)
            assert [step for step, _ in history] == [1, 2, 3], key
        theta_path = run_lookup.download_artifact(
            uri, run_id, "params/theta.npy", tmp_path / run_id
        )
        theta = np.load(theta_path)
        assert theta.shape == (784, 10) and theta.dtype == np.float32
    # compare prints the four runs, best test error first
    table = cli(
        "compare",
        "--tracking-uri",
        uri,
        "--experiment",
        "t",
        "--sweep",
        sweep_ids.pop(),
        "--format",
        "csv",
        cwd=tmp_path,
    ).stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    errors = [float(r["test/error"]) for r in rows]
    assert len(rows) == 4 and errors == sorted(errors)
    assert {r["optim.lr"] for r in rows} == {"0.05", "0.5"}


@pytest.mark.slow
def test_train_on_idx_dir_reproduces_core_trainer_exactly(tmp_path: Path, digits_dir: Path) -> None:
    cli(
        "train",
        *common_overrides(tmp_path, digits_dir),
        "optim.epochs=4",
        "optim.lr=0.3",
        cwd=tmp_path,
    )
    d = load_dataset("idx", path=digits_dir)
    expected = train(
        SoftmaxRegression(784, 10),
        d.X_train,
        d.y_train,
        d.X_test,
        d.y_test,
        lr=0.3,
        batch_size=100,
        epochs=4,
    )
    uri = store_uri(tmp_path)
    (run_id,) = reading.runs_frame(uri, "t")["run_id"]
    logged = {k: [v for _, v in reading.metric_history(uri, run_id, k)] for k in METRICS}
    assert logged["train/loss"] == [m.train_loss for m in expected.history]
    assert logged["test/error"] == [m.test_error for m in expected.history]
    theta = np.load(run_lookup.download_artifact(uri, run_id, "params/theta.npy", tmp_path / "a"))
    assert theta.tobytes() == expected.params["theta"].tobytes()


@pytest.mark.slow
def test_single_run_prints_the_per_epoch_table(tmp_path: Path, digits_dir: Path) -> None:
    out = cli(
        "train", *common_overrides(tmp_path, digits_dir), "optim.epochs=2", cwd=tmp_path
    ).stdout
    assert "| epoch | train loss | train err | test loss | test err |" in out
    assert "|     2 |" in out and "FINISHED" in out


@pytest.mark.slow
def test_bad_value_in_a_sweep_stops_everything_before_the_first_job(
    tmp_path: Path, digits_dir: Path
) -> None:
    proc = cli(
        "train",
        "-m",
        *common_overrides(tmp_path, digits_dir),
        "optim.lr=0.1,-1",
        "optim.epochs=1,0",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2
    assert "3 of 4 jobs have invalid configs; nothing was run" in proc.stderr
    assert "optim.lr must be > 0 and finite, got -1" in proc.stderr
    assert "optim.epochs must be >= 1, got 0" in proc.stderr
    assert not (tmp_path / "mlflow.db").exists(), "no store may be created for a rejected sweep"


@pytest.mark.slow
def test_bad_value_in_a_single_run_is_one_line_and_exit_2_with_nothing_made(
    tmp_path: Path, digits_dir: Path
) -> None:
    work = tmp_path / "work"  # the run's default output dir (outputs/runs/DATE/TIME) is here
    work.mkdir()
    overrides = [o for o in common_overrides(tmp_path, digits_dir) if "hydra.run.dir" not in o]
    proc = cli("train", *overrides, "optim.lr=-1", cwd=work, check=False)
    assert proc.returncode == 2
    assert proc.stderr == (
        "softmax-lab: invalid config: optim.lr must be > 0 and finite, got -1.0; nothing was run\n"
    )
    assert "| epoch |" not in proc.stdout
    assert not (tmp_path / "mlflow.db").exists()
    assert list(work.iterdir()) == [], "Hydra's run directory must not be made for a bad run"


@pytest.mark.slow
def test_a_run_directory_that_cannot_be_made_is_one_line_and_exit_2(
    tmp_path: Path, digits_dir: Path
) -> None:
    (tmp_path / "blocker").write_text("a file where the run directory's parent should be\n")
    run_dir = tmp_path / "blocker" / "run"
    overrides = [o for o in common_overrides(tmp_path, digits_dir) if "hydra.run.dir" not in o]
    proc = cli("train", *overrides, f"hydra.run.dir={run_dir}", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"softmax-lab: cannot make the run directory {run_dir} (hydra.run.dir): "
        f"[Errno 20] Not a directory: '{run_dir}'; nothing was run"
    )
    assert "Traceback" not in proc.stderr and "| epoch |" not in proc.stdout


@pytest.mark.slow
def test_several_bad_values_in_a_single_run_are_a_line_each(
    tmp_path: Path, digits_dir: Path
) -> None:
    args = [*common_overrides(tmp_path, digits_dir), "optim.lr=-1", "optim.epochs=0"]
    proc = cli("train", *args, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "softmax-lab: invalid config:",
        "  optim.lr must be > 0 and finite, got -1.0",
        "  optim.epochs must be >= 1, got 0; nothing was run",
    ]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.parametrize("sweep", [False, True], ids=["single run", "sweep"])
def test_no_server_at_tracking_uri_fails_at_once(
    tmp_path: Path, digits_dir: Path, sweep: bool
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    args = [*common_overrides(tmp_path, digits_dir), f"tracking.uri={uri}"]
    if sweep:
        args = ["-m", *args, "optim.lr=0.1,0.2"]
    started = time.monotonic()
    proc = cli("train", *args, cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"no MLflow server answers at tracking URI '{uri}': connection refused" in proc.stderr
    assert "nothing was run" in proc.stderr and "Traceback" not in proc.stderr
    assert time.monotonic() - started < 60  # MLflow alone retries for about two minutes
    assert not (tmp_path / "run").exists() and not (tmp_path / "multirun").exists()


@pytest.mark.slow
def test_typo_fails_naming_the_key(tmp_path: Path, digits_dir: Path) -> None:
    proc = cli(
        "train", *common_overrides(tmp_path, digits_dir), "optim.lrr=1", cwd=tmp_path, check=False
    )
    assert proc.returncode != 0
    assert "Key 'lrr' not in 'OptimConfig'" in proc.stderr + proc.stdout


@pytest.mark.slow
def test_diverging_job_fails_alone_and_the_sweep_exits_nonzero(
    tmp_path: Path, digits_dir: Path
) -> None:
    proc = cli(
        "train",
        "-m",
        *common_overrides(tmp_path, digits_dir),
        "model=mlp",
        "model.hidden_dim=16",
        "optim.lr=0.1,1e30",
        "optim.epochs=3",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 job(s) failed" in proc.stdout and "optim.lr=1e+30" in proc.stdout
    jobs = reading.runs_frame(store_uri(tmp_path), "t").set_index("params.optim.lr")
    assert jobs.loc["0.1", "status"] == "FINISHED"
    assert jobs.loc["1e+30", "status"] == "FAILED"
    assert "diverged" in jobs.loc["1e+30", "tags.sl.failure_reason"]


def test_help_answers_without_loading_hydra_or_mlflow() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from softmax_lab.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "print(sorted(m for m in ('hydra', 'mlflow', 'matplotlib', 'PIL') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_subcommand_is_an_argument_error(tmp_path: Path) -> None:
    proc = cli("trian", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "invalid choice: 'trian'" in proc.stderr


@pytest.mark.slow
def test_sweep_over_model_runs_both_classes_and_compare_shows_them(
    tmp_path: Path, digits_dir: Path
) -> None:
    cli(
        "train",
        "-m",
        *common_overrides(tmp_path, digits_dir),
        "model=softmax,mlp",
        "model.hidden_dim=32",
        "optim.epochs=2",
        cwd=tmp_path,
    )
    uri = store_uri(tmp_path)
    jobs = reading.runs_frame(uri, "t").set_index("params.model.name")
    assert set(jobs.index) == {"softmax", "mlp"} and set(jobs["status"]) == {"FINISHED"}
    mlp = jobs.loc["mlp", "run_id"]
    W1 = np.load(run_lookup.download_artifact(uri, mlp, "params/W1.npy", tmp_path / "w"))
    W2 = np.load(run_lookup.download_artifact(uri, mlp, "params/W2.npy", tmp_path / "w"))
    assert W1.shape == (784, 32) and W2.shape == (32, 10)
    assert run_lookup.download_artifact(uri, mlp, "plots/W1.png", tmp_path / "p").stat().st_size
    table = cli(
        "compare", "--tracking-uri", uri, "--experiment", "t", "--format", "csv", cwd=tmp_path
    ).stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert sorted(r["model.name"] for r in rows) == ["mlp", "softmax"]


@pytest.mark.slow
@pytest.mark.parametrize(("setting", "written"), [(None, False), ("false", True)])
def test_mlflow_telemetry_is_off_unless_the_user_opts_in(
    tmp_path: Path, digits_dir: Path, setting: str | None, written: bool
) -> None:
    # MLflow also stays quiet under CI or pytest: take those signals away, as on a user's machine
    quiet = {"CI", "PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "MLFLOW_DISABLE_TELEMETRY"}
    env = {k: v for k, v in clean_env().items() if k not in quiet}
    env |= {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    if setting is not None:
        env["MLFLOW_DISABLE_TELEMETRY"] = setting
    argv = [sys.executable, "-m", "softmax_lab", "train", "optim.epochs=1"]
    run_command([*argv, *common_overrides(tmp_path, digits_dir)], cwd=tmp_path, env=env)
    assert (tmp_path / "config" / "mlflow" / "telemetry.json").exists() == written


@pytest.mark.parametrize("port", ["99999", "0", "in-use"])
def test_ui_on_a_port_it_cannot_use_is_one_line_and_exit_2(tmp_path: Path, port: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        number = str(taken.getsockname()[1]) if port == "in-use" else port
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        proc = cli("ui", "--port", number, "--tracking-uri", uri, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("softmax-lab ui: ")
    assert number in proc.stderr and "Traceback" not in proc.stderr
