"""``softmax-lab compare`` (filters, sort, top, diff, plot) and the sweep report, on a real sweep.

One small sweep (4 jobs on ``digits_dir``, a real SQLite store) runs once in a subprocess; the
compare calls then run in-process through ``softmax_lab.cli.main``.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from helpers.cli import cli, common_overrides, store_uri
from PIL import Image

from softmax_lab.cli import main
from softmax_lab.cli.summary import summarise_sweep
from softmax_lab.review.sweep_report import REPORT_FILES, heatmap_params, write_sweep_report
from softmax_lab.tracking import reading, run_lookup

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Sweep:
    root: Path
    uri: str
    sweep_id: str
    parent_run_id: str
    jobs: pd.DataFrame  # runs_frame of the four jobs
    stdout: str


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> Sweep:
    root = tmp_path_factory.mktemp("compare")
    out = cli(
        "train",
        "-m",
        *common_overrides(root, digits_dir),
        "optim.lr=0.05,0.5",
        "optim.batch_size=50,100",
        "optim.epochs=2",
        cwd=root,
    ).stdout
    uri = store_uri(root)
    jobs = reading.runs_frame(uri, "t")
    everything = reading.runs_frame(uri, "t", include_parents=True)
    (parent,) = everything.loc[everything["tags.sl.role"] == "sweep", "run_id"]
    (sweep_id,) = set(jobs["sweep_id"])
    return Sweep(root, uri, sweep_id, parent, jobs, out)


def compare(sweep: Sweep, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``softmax-lab compare --tracking-uri … --experiment t ARGS`` in-process."""
    code = main(["compare", "--tracking-uri", sweep.uri, "--experiment", "t", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rows(csv_text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(csv_text)))


def lr_of(sweep: Sweep, short_id: str) -> str:
    (lr,) = sweep.jobs.loc[sweep.jobs["run_id"].str.startswith(short_id), "params.optim.lr"]
    return str(lr)


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    with Image.open(path) as image:
        image.verify()
        assert image.size[0] > 100 and image.size[1] > 100


# --- the sweep itself ---------------------------------------------------------------------------


@pytest.mark.slow
def test_sweep_writes_its_report_and_logs_it_to_the_parent_run(
    sweep: Sweep, tmp_path: Path
) -> None:
    report_dir = sweep.root / "multirun" / "report"
    assert f"sweep pictures: {report_dir}/" in sweep.stdout
    for name in REPORT_FILES:
        assert (report_dir / name).is_file(), name
    assert_png(report_dir / "heatmap.png")
    assert_png(report_dir / "curves.png")
    assert len(rows((report_dir / "compare.csv").read_text())) == 4
    logged = run_lookup.download_artifact(sweep.uri, sweep.parent_run_id, "sweep", tmp_path)
    assert sorted(p.name for p in logged.iterdir()) == sorted(REPORT_FILES)
    assert (logged / "heatmap.png").read_bytes() == (report_dir / "heatmap.png").read_bytes()


@pytest.mark.slow
def test_sweep_summary_survives_a_report_that_cannot_be_written(
    sweep: Sweep,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blocked = tmp_path / "report"
    blocked.write_text("a file where the report directory should go")
    with caplog.at_level(logging.WARNING):
        summarise_sweep(sweep.uri, "t", sweep.sweep_id, 4, [], sweep.parent_run_id, blocked)
    out = capsys.readouterr().out
    assert "4 of 4 jobs finished" in out and "compare again:" in out
    assert "sweep pictures" not in out
    assert f"could not write or log the sweep pictures in {blocked}" in caplog.text


# --- filters, sort, top ---------------------------------------------------------------------


@pytest.mark.slow
def test_where_keeps_only_matching_runs(sweep: Sweep, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = compare(sweep, "--where", "optim.lr>0.1", "--format", "csv", capsys=capsys)
    assert code == 0
    kept = rows(out)
    assert len(kept) == 2
    assert {lr_of(sweep, r["run"]) for r in kept} == {"0.5"}


@pytest.mark.slow
def test_an_unknown_sweep_is_a_usage_error(
    sweep: Sweep, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = compare(sweep, "--sweep", "deadbeef", capsys=capsys)
    assert code == 2 and out == ""
    assert "no runs of sweep 'deadbeef' in experiment 't'" in err


@pytest.mark.slow
def test_several_where_must_all_hold(sweep: Sweep, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = compare(
        sweep, "--where", "optim.lr>0.1", "--where", "optim.batch_size=50", capsys=capsys
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        "experiment 't', all sweeps, --where 'optim.lr>0.1', --where 'optim.batch_size=50': "
        "1 of 4 runs, best first by test/error"
    )
    assert len(lines) == 3  # title, header, one run


@pytest.mark.slow
def test_mlflow_filter_passes_through(sweep: Sweep, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = compare(
        sweep, "--filter", "params.`optim.batch_size` = '50'", "--format", "csv", capsys=capsys
    )
    assert code == 0
    assert [r["optim.lr"] for r in rows(out)] != [] and len(rows(out)) == 2


@pytest.mark.slow
def test_top_keeps_the_best_run(sweep: Sweep, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = compare(sweep, "--top", "1", "--format", "csv", capsys=capsys)
    assert code == 0
    (best,) = rows(out)
    assert float(best["test/error"]) == sweep.jobs["metrics.test/error"].min()


@pytest.mark.slow
def test_sort_by_train_loss(sweep: Sweep, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = compare(sweep, "--sort", "train/loss", "--format", "csv", capsys=capsys)
    assert code == 0
    losses = [float(r["train/loss"]) for r in rows(out)]
    assert len(losses) == 4 and losses == sorted(losses)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--where", "optim.lrr>0.1"), "where expression 'optim.lrr>0.1': unknown key 'optim.lrr'"),
        (("--where", "optim.lr>>0.1"), "where expression 'optim.lr>>0.1' is malformed"),
        (("--filter", "params.optim.lr > 0.1"), "invalid run filter 'params.optim.lr > 0.1'"),
        (("--sort", "accuracy"), "sort must be one of name, optim.lr, optim.batch_size"),
        (("--diff", "zzzzzzzz", "yyyyyyyy"), "--diff: no run with id 'zzzzzzzz' among these 4"),
        (("--experiment", "nope"), "experiment 'nope' not found"),
    ],
)
def test_usage_errors_exit_2_with_the_reason(
    sweep: Sweep, args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = compare(sweep, *args, capsys=capsys)
    assert code == 2 and out == ""
    assert err.startswith("softmax-lab compare: ") and message in err
    if args[0] == "--where":
        assert "valid keys: status, dataset.name" in err and "test/error" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--top", "0"), "--top must be >= 1, got 0"),
        (("--diff", "a", "b", "--top", "2"), "--diff compares two runs: it takes no --where"),
        (("--diff", "a", "b", "--plot"), "--diff compares two runs"),
    ],
)
def test_usage_errors_found_before_reading_any_store(
    tmp_path: Path, args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"sqlite:///{tmp_path / 'absent.db'}"
    assert main(["compare", "--tracking-uri", uri, *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "absent.db").exists()


# --- diff -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_diff_shows_the_differing_lr_and_metrics(
    sweep: Sweep, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = sweep.jobs.set_index(["params.optim.lr", "params.optim.batch_size"])
    a, b = jobs.loc[("0.05", "50"), "run_id"], jobs.loc[("0.5", "50"), "run_id"]
    code, out, _ = compare(sweep, "--diff", a[:8], b, capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"A: {a[:8]}") and lines[1].startswith(f"B: {b[:8]}")
    params = out[out.index("params that differ:") : out.index("final metrics:")]
    assert params.split("\n")[2].split() == ["optim.lr", "0.05", "0.5"]
    assert "optim.batch_size" not in params
    metrics = out[out.index("final metrics:") :].splitlines()
    assert metrics[1].split() == ["metric", "A", "B", "B-A"]
    test_error = next(line.split() for line in metrics if line.split()[0] == "test/error")
    err_a = sweep.jobs.set_index("run_id").loc[a, "metrics.test/error"]
    assert float(test_error[1]) == pytest.approx(err_a, abs=1e-5)


# --- plot -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_plot_writes_csv_heatmap_and_curves(
    sweep: Sweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "pics"
    code, out, _ = compare(sweep, "--plot", str(out_dir), capsys=capsys)
    assert code == 0
    paths = [out_dir / name for name in REPORT_FILES]
    assert out.splitlines()[-4:] == ["wrote 3 files:", *(f"  {p}" for p in paths)]
    table = rows((out_dir / "compare.csv").read_text())
    assert len(table) == 4
    assert {r["run"] for r in table} == {run_id[:8] for run_id in sweep.jobs["run_id"]}
    errors = [float(r["test/error"]) for r in table]
    assert errors == sorted(errors)
    assert_png(out_dir / "heatmap.png")
    assert_png(out_dir / "curves.png")


@pytest.mark.slow
def test_plot_draws_only_the_shown_runs_and_keeps_csv_stdout_clean(
    sweep: Sweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "pics"
    code, out, err = compare(
        sweep, "--where", "optim.lr>0.1", "--plot", str(out_dir), "--format", "csv", capsys=capsys
    )
    assert code == 0
    assert rows(out) == rows((out_dir / "compare.csv").read_text())  # stdout is only the CSV
    assert len(rows(out)) == 2 and "wrote 3 files:" in err


@pytest.mark.slow
def test_plot_with_nothing_to_draw_exits_1(
    sweep: Sweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = compare(
        sweep, "--where", "optim.lr>9", "--plot", str(tmp_path / "p"), capsys=capsys
    )
    assert code == 1 and "no runs to draw" in err


@pytest.mark.slow
def test_write_sweep_report_marks_unfinished_runs_nan(sweep: Sweep, tmp_path: Path) -> None:
    runs = sweep.jobs.copy()
    runs.loc[runs.index[0], "status"] = "FAILED"
    paths = write_sweep_report(sweep.uri, runs, tmp_path / "r")
    assert [p.name for p in paths] == list(REPORT_FILES)
    table = pd.read_csv(paths[0])
    assert table["status"].iloc[-1] == "FAILED"  # failed runs come last in the table
    assert_png(paths[1])


def test_write_sweep_report_needs_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no runs to draw"):
        write_sweep_report(None, pd.DataFrame(columns=["run_id"]), tmp_path)


def test_heatmap_params_are_the_three_swept_with_most_values() -> None:
    table = pd.DataFrame(
        {
            "run": list("abcdef"),
            "name": list("abcdef"),
            "status": ["FINISHED"] * 6,
            "model.name": ["softmax", "mlp"] * 3,
            "optim.lr": [0.1, 0.2, 0.3, 0.1, 0.2, 0.3],
            "optim.batch_size": [50, 50, 50, 100, 100, 200],
            "optim.epochs": [1, 1, 1, 1, 1, 2],
            "seed": [0] * 6,
            "test/error": [0.1] * 6,
        }
    )
    shown, averaged = heatmap_params(table)
    assert shown == ["optim.lr", "optim.batch_size", "model.name"]  # 3, 3, 2 values; ties: order
    assert averaged == ["optim.epochs"]
    assert heatmap_params(table.iloc[:1]) == ([], [])
