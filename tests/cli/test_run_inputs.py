"""Every run's data as MLflow dataset inputs, end to end: a fused sweep and a single run on two
datasets in one real SQLite store, ``compare`` on ``dataset.digest``, and ``rerun``."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.cli import cli, common_overrides, store_uri
from mlflow import MlflowClient

from softmax_lab.cli import main
from softmax_lab.data.idx import write_idx
from softmax_lab.data.idx_sets import IDX_FILES
from softmax_lab.data.sources import load_dataset
from softmax_lab.tracking import reading


@dataclass(frozen=True)
class Store:
    root: Path
    uri: str
    sweep_runs: list[str]  # the fused sweep's jobs on digits_dir
    single_run: str  # one run on other data
    digits_fp: str
    other_fp: str
    other_dir: Path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> Store:
    root = tmp_path_factory.mktemp("inputs")
    # other data: the first 400 training and 100 test digits of digits_dir
    other_dir = root / "other"
    other_dir.mkdir()
    digits = load_dataset("idx", path=digits_dir)
    to_images = lambda X: (X * 255).round().astype("uint8").reshape(-1, 28, 28)  # noqa: E731
    parts = (
        to_images(digits.X_train[:400]),
        digits.y_train[:400],
        to_images(digits.X_test[:100]),
        digits.y_test[:100],
    )
    for base, array in zip(IDX_FILES, parts, strict=True):
        write_idx(other_dir / f"{base}.gz", array)
    cli(
        "train",
        "-m",
        *common_overrides(root, digits_dir),
        "optim.lr=0.1,0.2",
        "optim.epochs=1,2",
        cwd=root,
    )
    uri = store_uri(root)
    sweep_runs = list(reading.runs_frame(uri, "t")["run_id"])
    cli("train", *common_overrides(root, other_dir), "optim.epochs=1", cwd=root)
    (single,) = set(reading.runs_frame(uri, "t")["run_id"]) - set(sweep_runs)
    other = load_dataset("idx", path=other_dir)
    return Store(root, uri, sweep_runs, single, digits.fingerprint, other.fingerprint, other_dir)


def inputs_of(uri: str, run_id: str) -> list[tuple[str, str, str, dict[str, str], list[int]]]:
    """(name, context, digest, source, features shape) of every dataset input of the run."""
    run = MlflowClient(uri).get_run(run_id)
    return sorted(
        (
            i.dataset.name,
            {t.key: t.value for t in i.tags}["mlflow.data.context"],
            i.dataset.digest,
            json.loads(i.dataset.source),
            json.loads(i.dataset.profile)["features_shape"],
        )
        for i in run.inputs.dataset_inputs
    )


@pytest.mark.slow
def test_every_fused_job_logs_training_and_test_inputs(store: Store, digits_dir: Path) -> None:
    client = MlflowClient(store.uri)
    assert len(store.sweep_runs) == 4
    source = {"uri": str(digits_dir.resolve())}
    digest = store.digits_fp[:36]
    for run_id in store.sweep_runs:
        tags = client.get_run(run_id).data.tags
        assert tags["sl.fused"] == "true"  # trained fused, recorded like a separate run
        assert tags["sl.dataset_fingerprint"].startswith(digest)
        assert inputs_of(store.uri, run_id) == [
            ("idx/test", "test", digest, source, [200, 784]),
            ("idx/train", "training", digest, source, [800, 784]),
        ]


@pytest.mark.slow
def test_a_single_run_logs_its_own_data_as_inputs(store: Store) -> None:
    source = {"uri": str(store.other_dir.resolve())}
    digest = store.other_fp[:36]
    assert digest != store.digits_fp[:36]
    assert inputs_of(store.uri, store.single_run) == [
        ("idx/test", "test", digest, source, [100, 784]),
        ("idx/train", "training", digest, source, [400, 784]),
    ]


def compare(store: Store, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["compare", "--tracking-uri", store.uri, "--experiment", "t", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def shown(csv_text: str) -> set[str]:
    return {row["run"] for row in csv.DictReader(io.StringIO(csv_text))}


@pytest.mark.slow
def test_compare_where_dataset_digest_lists_exactly_the_runs_on_that_data(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    # the sweep's jobs, and reruns of them if the rerun test ran first: on the same data
    frame = reading.runs_frame(store.uri, "t")
    reruns = frame.get("tags.sl.rerun_of", frame["run_id"].map(lambda _: None))
    sweep = {r[:8] for r in frame.loc[reruns.isin(store.sweep_runs), "run_id"]}
    sweep |= {r[:8] for r in store.sweep_runs}
    for value, expected in (
        (store.digits_fp[:36], sweep),  # the digest the UI shows
        (store.digits_fp, sweep),  # the whole fingerprint (tag sl.dataset_fingerprint)
        (store.other_fp[:12], {store.single_run[:8]}),  # a prefix, as rerun prints it
    ):
        where = f"dataset.digest={value}"
        code, out, err = compare(store, "--where", where, "--format", "csv", capsys=capsys)
        assert (code, err) == (0, "")
        assert shown(out) == expected
    code, out, _ = compare(
        store, "--where", f"dataset.digest!={store.other_fp[:8]}", "--format", "csv", capsys=capsys
    )
    assert shown(out) == sweep
    # MLflow's own search on the inputs finds the same runs
    native = f"dataset.digest = '{store.digits_fp[:36]}'"
    code, out, err = compare(store, "--filter", native, "--format", "csv", capsys=capsys)
    assert (code, err) == (0, "") and shown(out) == sweep


@pytest.mark.slow
def test_compare_where_a_malformed_digest_is_one_line_and_exit_2(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = compare(store, "--where", "dataset.digest=e065", capsys=capsys)
    assert code == 2 and out == ""
    assert err.startswith(
        "softmax-lab compare: where expression 'dataset.digest=e065': dataset.digest takes = or "
        "!= and 8 to 64 hex digits"
    )
    assert err.count("\n") == 1


@pytest.mark.slow
def test_rerun_of_a_fused_job_reproduces_and_logs_the_same_inputs(store: Store) -> None:
    run_id = store.sweep_runs[0]
    before = set(reading.runs_frame(store.uri, "t")["run_id"])
    proc = cli("rerun", run_id[:8], "--tracking-uri", store.uri, cwd=store.root)
    assert proc.stdout.rstrip().endswith("reproduced exactly"), proc.stdout
    (new,) = set(reading.runs_frame(store.uri, "t")["run_id"]) - before
    assert inputs_of(store.uri, new) == inputs_of(store.uri, run_id)
