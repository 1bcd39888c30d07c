"""Runs that explode without NaN, and labels outside the class count, through the command line.

Real ``softmax-lab`` processes on small real IDX files, real SQLite stores.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.cli import cli, common_overrides, store_uri

from softmax_lab.data.idx import read_idx, write_idx
from softmax_lab.tracking import reading, run_lookup

EXPLODED = "training exploded: final train loss "


def _sweep(tmp_path: Path, digits_dir: Path, experiment: str, *extra: str) -> str:
    """A sweep of the reference and an exploding step size, each with both explosion policies;
    its stdout (exit code 1: one job fails)."""
    proc = cli(
        "train",
        "-m",
        *common_overrides(tmp_path, digits_dir, experiment),
        f"hydra.sweep.dir={tmp_path / experiment}",
        "optim.lr=0.2,1000",
        "optim.on_explode=flag,fail",
        "optim.epochs=2",
        *extra,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return proc.stdout


def _by_job(frame: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    return {(r["params.optim.lr"], r["params.optim.on_explode"]): r for _, r in frame.iterrows()}


@pytest.mark.slow
def test_an_exploding_job_is_flagged_or_failed_alike_fused_and_alone(
    tmp_path: Path, digits_dir: Path
) -> None:
    outputs = {
        "fused": _sweep(tmp_path, digits_dir, "fused"),
        "basic": _sweep(tmp_path, digits_dir, "basic", "hydra/launcher=basic"),
    }
    uri = store_uri(tmp_path)
    losses = {}
    for experiment, out in outputs.items():
        assert "1 job(s) failed" in out and "1 job(s) finished but exploded" in out
        jobs = _by_job(reading.runs_frame(uri, experiment))
        if experiment == "fused":  # the policies may differ within a group: one group of four
            assert {r.get("tags.sl.fused") for r in jobs.values()} == {"true"}
            assert len({r["tags.sl.fused_group"].split()[0] for r in jobs.values()}) == 1
        else:
            assert all(pd.isna(r.get("tags.sl.fused")) for r in jobs.values())
        for policy in ("flag", "fail"):  # the reference step size learns: no flag
            learned = jobs["0.2", policy]
            assert learned["status"] == "FINISHED" and pd.isna(learned["tags.sl.exploded"])
        flagged, failed = jobs["1000.0", "flag"], jobs["1000.0", "fail"]
        assert flagged["status"] == "FINISHED" and flagged["tags.sl.exploded"] == "true"
        assert flagged["tags.sl.explosion"].startswith(EXPLODED)
        assert "(epoch 2) is not below ln(10) = 2.3026" in flagged["tags.sl.explosion"]
        assert pd.isna(flagged["tags.sl.failure_reason"])
        assert failed["status"] == "FAILED" and failed["tags.sl.exploded"] == "true"
        assert failed["tags.sl.failure_reason"] == failed["tags.sl.explosion"]
        assert failed["metrics.train/loss"] > 100 and flagged["metrics.train/loss"] > 100
        losses[experiment] = flagged["metrics.train/loss"]
        for run in (flagged, failed):  # trained to the end: θ is logged, to look at or rerun
            path = run_lookup.download_artifact(
                uri, run["run_id"], "params/theta.npy", tmp_path / run["run_id"]
            )
            assert np.isfinite(np.load(path)).all()
        assert f"{flagged['run_id'][:8]} " in out.split("finished but exploded:")[1]
    assert losses["fused"] == pytest.approx(losses["basic"], rel=1e-5)

    # compare shows the flag, and ranks the flagged run after the runs that learned
    table = cli(
        "compare", "--tracking-uri", uri, "--experiment", "fused", "--format", "csv", cwd=tmp_path
    ).stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [(r["status"], r["flag"], r["optim.lr"]) for r in rows] == [
        ("FINISHED", "", "0.2"),
        ("FINISHED", "", "0.2"),
        ("FINISHED", "exploded", "1000.0"),
        ("FAILED", "exploded", "1000.0"),
    ]


@pytest.mark.slow
def test_a_single_run_that_explodes_says_so_and_still_finishes(
    tmp_path: Path, digits_dir: Path
) -> None:
    out = cli(
        "train",
        *common_overrides(tmp_path, digits_dir),
        "optim.lr=1000",
        "optim.epochs=2",
        cwd=tmp_path,
    ).stdout
    assert f": FINISHED ({EXPLODED}" in out
    (run,) = [r for _, r in reading.runs_frame(store_uri(tmp_path), "t").iterrows()]
    assert (run["status"], run["tags.sl.exploded"]) == ("FINISHED", "true")


@pytest.mark.slow
def test_a_label_outside_the_class_count_fails_the_run_naming_the_file(
    tmp_path: Path, digits_dir: Path
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for source in digits_dir.iterdir():
        (bad / source.name).write_bytes(source.read_bytes())
    labels = read_idx(bad / "t10k-labels-idx1-ubyte.gz").copy()
    labels[5] = 255
    write_idx(bad / "t10k-labels-idx1-ubyte.gz", labels)
    overrides = [*common_overrides(tmp_path, bad), "optim.epochs=1"]

    proc = cli("train", *overrides, cwd=tmp_path, check=False)
    message = (
        f"{bad / 't10k-labels-idx1-ubyte.gz'}: labels must be in 0..9 (dataset.n_classes=10), "
        "got 255 in 1 of 200 labels"
    )
    assert message in proc.stdout
    (failed,) = [r for _, r in reading.runs_frame(store_uri(tmp_path), "t").iterrows()]
    assert failed["status"] == "FAILED" and message in failed["tags.sl.failure_reason"]

    # with the class count that fits, the model has 256 outputs
    cli("train", *overrides, "dataset.n_classes=256", cwd=tmp_path)
    runs = reading.runs_frame(store_uri(tmp_path), "t")
    (done,) = runs.loc[runs["status"] == "FINISHED", "run_id"]
    theta = np.load(
        run_lookup.download_artifact(store_uri(tmp_path), done, "params/theta.npy", tmp_path / "a")
    )
    assert theta.shape == (784, 256)
