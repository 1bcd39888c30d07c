"""``dataset.val_size`` end to end: real ``softmax-lab`` processes, real SQLite stores."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import cli, common_overrides, store_uri

from softmax_lab.core.textbook import evaluate as textbook_evaluate
from softmax_lab.data.sources import load_dataset
from softmax_lab.tracking import reading, run_lookup

VAL = ("val/loss", "val/error")
GRID = ("dataset.val_size=0,200", "optim.lr=0.05,0.5", "optim.epochs=3")


def _sweep(tmp: Path, digits_dir: Path, *extra: str) -> str:
    tmp.mkdir()
    return cli("train", "-m", *common_overrides(tmp, digits_dir), *GRID, *extra, cwd=tmp).stdout


def _histories(uri: str, run_id: str) -> dict[str, list[tuple[int, float]]]:
    keys = ("train/loss", *VAL, "test/error")
    return {k: reading.metric_history(uri, run_id, k) for k in keys}


@pytest.mark.slow
def test_a_sweep_with_a_split_logs_val_metrics_fused_as_separate_and_compare_sorts_by_them(
    tmp_path: Path, digits_dir: Path
) -> None:
    _sweep(tmp_path / "fused", digits_dir)
    _sweep(tmp_path / "basic", digits_dir, "hydra/launcher=basic")
    uris = {how: store_uri(tmp_path / how) for how in ("fused", "basic")}
    jobs = {how: reading.runs_frame(uri, "t") for how, uri in uris.items()}
    held = load_dataset("idx", path=digits_dir, val_size=200)  # loaded here, independently
    assert held.X_val is not None and held.y_val is not None
    for how, frame in jobs.items():
        assert len(frame) == 4 and set(frame["status"]) == {"FINISHED"}, how
    rows = {
        how: {(r["params.dataset.val_size"], r["params.optim.lr"]): r for _, r in f.iterrows()}
        for how, f in jobs.items()
    }
    for key, fused in rows["fused"].items():
        basic = rows["basic"][key]
        assert fused["tags.sl.fused"] == "true"
        assert fused["tags.sl.config_hash"] == basic["tags.sl.config_hash"]
        hf = _histories(uris["fused"], fused["run_id"])
        hb = _histories(uris["basic"], basic["run_id"])
        if key[0] == "0":  # no split: no val metrics at all
            assert hf["val/loss"] == hf["val/error"] == hb["val/loss"] == [], key
            continue
        for metric in VAL:  # one point per epoch, fused as separate to float32 rounding
            assert [s for s, _ in hf[metric]] == [s for s, _ in hb[metric]] == [1, 2, 3]
            gaps = [abs(x - y) for (_, x), (_, y) in zip(hf[metric], hb[metric], strict=True)]
            assert max(gaps) <= (1e-6 if metric == "val/loss" else 1 / 200 + 1e-12), (key, gaps)
        # the last epoch's val metrics are those of the logged θ on the held-out rows
        theta = np.load(
            run_lookup.download_artifact(
                uris["basic"], basic["run_id"], "params/theta.npy", tmp_path / basic["run_id"]
            )
        )
        loss, err = textbook_evaluate(
            held.X_val.astype(np.float64), held.y_val, theta.astype(np.float64)
        )
        assert hb["val/loss"][-1][1] == pytest.approx(loss, rel=1e-5)
        assert hb["val/error"][-1][1] == err
        assert basic["tags.sl.dataset_fingerprint"] == held.fingerprint
    # the fingerprint of the split is not the whole set's
    whole = rows["basic"][("0", "0.05")]["tags.sl.dataset_fingerprint"]
    assert whole == load_dataset("idx", path=digits_dir).fingerprint != held.fingerprint

    table = cli(
        "compare",
        "--tracking-uri",
        uris["basic"],
        "--experiment",
        "t",
        "--sort",
        "val/error",
        "--format",
        "csv",
        cwd=tmp_path,
    ).stdout
    shown = list(csv.DictReader(io.StringIO(table)))
    header = next(csv.reader(io.StringIO(table)))
    assert header.index("train/error") < header.index("val/loss") < header.index("test/loss")
    assert [r["dataset.val_size"] for r in shown] == ["200", "200", "0", "0"]
    val_errors = [float(r["val/error"]) for r in shown[:2]]
    assert val_errors == sorted(val_errors) and shown[2]["val/error"] == ""
    last = {
        r["optim.lr"]: rows["basic"][("200", r["optim.lr"])]["metrics.val/error"] for r in shown[:2]
    }
    assert val_errors == [last[r["optim.lr"]] for r in shown[:2]]


@pytest.mark.slow
def test_a_single_run_with_a_split_prints_the_val_columns(tmp_path: Path, digits_dir: Path) -> None:
    out = cli(
        "train",
        *common_overrides(tmp_path, digits_dir),
        "dataset.val_size=200",
        "optim.epochs=2",
        cwd=tmp_path,
    ).stdout
    assert "| epoch | train loss | train err | val loss | val err | test loss | test err |" in out
    (run_id,) = reading.runs_frame(store_uri(tmp_path), "t")["run_id"]
    history = reading.metric_history(store_uri(tmp_path), run_id, "val/error")
    for epoch, value in history:
        assert f"|     {epoch} |" in out and f" | {value:7.5f} | " in out


@pytest.mark.slow
def test_a_val_size_not_smaller_than_the_training_set_is_one_clear_line(
    tmp_path: Path, digits_dir: Path
) -> None:
    proc = cli(
        "train",
        *common_overrides(tmp_path, digits_dir),
        "dataset.val_size=800",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 1
    message = (
        "DatasetError: dataset.val_size must be smaller than the training set of idx "
        "(800 examples), got 800"
    )
    assert f"FAILED ({message})" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    (reason,) = reading.runs_frame(store_uri(tmp_path), "t")["tags.sl.failure_reason"]
    assert reason == message


@pytest.mark.slow
def test_a_negative_val_size_is_rejected_before_anything_runs(
    tmp_path: Path, digits_dir: Path
) -> None:
    proc = cli(
        "train",
        *common_overrides(tmp_path, digits_dir),
        "dataset.val_size=-1",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2
    assert "dataset.val_size must be >= 0, got -1" in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_a_sweep_whose_runs_all_have_a_split_ranks_them_by_val_error(
    tmp_path: Path, digits_dir: Path
) -> None:
    out = cli(
        "train",
        "-m",
        *common_overrides(tmp_path, digits_dir),
        "dataset.val_size=200",
        "optim.lr=0.01,0.5",
        "optim.epochs=2",
        cwd=tmp_path,
    ).stdout
    assert "2 of 2 jobs finished, best first by val/error:" in out
    assert re.search(r"compare again: softmax-lab compare .* --sort val/error\n", out)
    jobs = reading.runs_frame(store_uri(tmp_path), "t")
    best = jobs.sort_values("metrics.val/error")["run_id"].iloc[0]
    assert f"model of the best run: runs:/{best}/model" in out  # chosen on validation
    report = (tmp_path / "multirun" / "report" / "compare.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(report)))
    assert [float(r["val/error"]) for r in rows] == sorted(jobs["metrics.val/error"])

    plots = tmp_path / "plots"
    cli(
        "compare",
        "--tracking-uri",
        store_uri(tmp_path),
        "--experiment",
        "t",
        "--sort",
        "val/error",
        "--plot",
        str(plots),
        cwd=tmp_path,
    )
    assert {p.name for p in plots.iterdir()} >= {"compare.csv", "heatmap.png", "curves.png"}


@pytest.mark.slow
def test_rerun_of_a_run_with_a_split_reproduces_its_val_metrics_exactly(
    tmp_path: Path, digits_dir: Path
) -> None:
    cli(
        "train",
        *common_overrides(tmp_path, digits_dir),
        "dataset.val_size=200",
        "optim.epochs=3",
        "optim.shuffle=true",
        cwd=tmp_path,
    )
    uri = store_uri(tmp_path)
    (run_id,) = reading.runs_frame(uri, "t")["run_id"]
    proc = cli("rerun", run_id, "--tracking-uri", uri, cwd=tmp_path)
    assert "| val loss | val err |" in proc.stdout
    assert proc.stdout.rstrip().endswith("reproduced exactly"), proc.stdout
    frame = reading.runs_frame(uri, "t")
    (rerun_id,) = frame.loc[frame["tags.sl.rerun_of"] == run_id, "run_id"]
    for key in VAL:  # compared bit for bit, with the train and test metrics
        logged = reading.metric_history(uri, run_id, key)
        assert len(logged) == 3 and reading.metric_history(uri, rerun_id, key) == logged
    changed = cli(
        "rerun", run_id, "--set", "dataset.val_size=100", "--tracking-uri", uri, cwd=tmp_path
    ).stdout
    assert "dataset changed by --set: fingerprint" in changed
