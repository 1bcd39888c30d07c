"""``softmax-lab push``: a real sweep (parent + jobs, θ and pictures) run into a SQLite store,
pushed by the real command into a second SQLite store and into a real team store (PostgreSQL +
``mlflow server`` with basic auth), then read back from both sides and compared run by run.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import cli, common_overrides, store_uri
from helpers.team_store import TeamStore, running_team_store, signed_in
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

EXPERIMENT = "alone"
PUSH_TAG = "sl.pushed_from"
LINK = "mlflow.parentRunId"


@pytest.fixture(autouse=True)
def _no_progress_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's client in the test downloads artifacts without drawing bars on stderr."""
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> str:
    """A SQLite store holding a 4-job sweep (softmax fused, mlp one by one) and its parent."""
    work = tmp_path_factory.mktemp("alone")
    cli(
        "train",
        "-m",
        *common_overrides(work, digits_dir, EXPERIMENT),
        "model=softmax,mlp",
        "optim.lr=0.1,0.3",
        "optim.epochs=2",
        "model.hidden_dim=16",
        cwd=work,
    )
    return store_uri(work)


def _files(client: MlflowClient, run_id: str) -> dict[str, str]:
    """Every artifact file of a run, path → SHA-256 of its bytes (downloaded at once)."""
    with tempfile.TemporaryDirectory() as tmp:
        if not client.list_artifacts(run_id):
            return {}
        root = Path(client.download_artifacts(run_id, "", tmp))
        return {
            f.relative_to(root).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*"))
            if f.is_file()
        }


def _record(client: MlflowClient, run_id: str) -> dict[str, Any]:
    """All a run holds that a push copies, ids left out."""
    run = client.get_run(run_id)
    return {
        "name": run.info.run_name,
        "status": run.info.status,
        "times": (run.info.start_time, run.info.end_time),
        "params": run.data.params,
        "tags": {k: v for k, v in run.data.tags.items() if k not in (LINK, PUSH_TAG)},
        "metrics": {
            key: sorted(
                (p.step, p.value, p.timestamp) for p in client.get_metric_history(run_id, key)
            )
            for key in run.data.metrics
        },
        "files": _files(client, run_id),
    }


def _experiment_runs(client: MlflowClient) -> list[Any]:
    found = client.get_experiment_by_name(EXPERIMENT)
    assert found is not None
    return list(client.search_runs([found.experiment_id], max_results=1000))


def _assert_same_runs(source_uri: str, target_uri: str) -> dict[str, str]:
    """Each source run has exactly one copy in the target holding the same record, linked to
    its parent's copy; return source id → copy id."""
    src, dst = MlflowClient(source_uri), MlflowClient(target_uri)
    originals = _experiment_runs(src)
    copies = _experiment_runs(dst)
    assert len(copies) == len(originals) == 5  # the sweep's parent + 4 jobs
    copy_of = {}
    for copy in copies:
        origin, _, run_id = copy.data.tags[PUSH_TAG].rpartition("#")
        assert origin == source_uri
        copy_of[run_id] = copy.info.run_id
    assert sorted(copy_of) == sorted(r.info.run_id for r in originals)
    for run in originals:
        run_id = run.info.run_id
        new = _record(dst, copy_of[run_id])
        assert new == _record(src, run_id)
        parent = run.data.tags.get(LINK)
        assert dst.get_run(copy_of[run_id]).data.tags.get(LINK) == (
            copy_of[parent] if parent else None
        )
        if parent:
            assert "params/theta.npy" in new["files"] or "params/W1.npy" in new["files"]
            assert "plots/theta.png" in new["files"] or "plots/curves.png" in new["files"]
            assert len(new["metrics"]["test/error"]) == 2
    return copy_of


def _push(source_uri: str, target_uri: str, cwd: Path, **kw: Any) -> str:
    argv = ["push", "--to", target_uri, "--experiment", EXPERIMENT, "--tracking-uri", source_uri]
    return cli(*argv, cwd=cwd, **kw).stdout


def _a_job(copy_of: dict[str, str], client: MlflowClient) -> str:
    return next(
        new for new in copy_of.values() if client.get_run(new).data.tags.get("sl.role") == "job"
    )


def test_push_into_sqlite_copies_every_run_once(source: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'team' / 'mlflow.db'}"
    first = _push(source, target, tmp_path)
    assert "copied 5 runs, skipped 0 already there, 0 running" in first
    copy_of = _assert_same_runs(source, target)

    # a run still RUNNING in the source waits; the rest is there already
    open_run = MlflowClient(source).create_run(
        MlflowClient(source).get_experiment_by_name(EXPERIMENT).experiment_id  # type: ignore[union-attr]
    )
    try:
        again = _push(source, target, tmp_path)
        assert "copied 0 runs, skipped 5 already there, 1 running" in again
        assert f"run {open_run.info.run_id} is still RUNNING" in again
    finally:
        MlflowClient(source).delete_run(open_run.info.run_id)
    assert _assert_same_runs(source, target) == copy_of

    shown = cli("compare", "--tracking-uri", target, "--experiment", EXPERIMENT, cwd=tmp_path)
    assert "4 runs, best first by test/error" in shown.stdout
    rerun = cli(
        "rerun", _a_job(copy_of, MlflowClient(target)), "--tracking-uri", target, cwd=tmp_path
    )
    assert "reproduced exactly" in rerun.stdout


def test_push_finishes_a_copy_an_interrupted_push_left(source: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _push(source, target, tmp_path)
    dst = MlflowClient(target)
    # what a push killed half-way leaves: a copy with the tag of a push in progress, no more
    cut_short = _experiment_runs(dst)[0]
    dst.delete_tag(cut_short.info.run_id, PUSH_TAG)
    dst.set_tag(cut_short.info.run_id, "sl.pushing_from", "cut short")
    again = _push(source, target, tmp_path)
    assert "deleted 1 copies an interrupted push left incomplete" in again
    assert "copied 1 runs, skipped 4 already there" in again
    _assert_same_runs(source, target)


def test_push_to_a_store_it_cannot_use_is_one_line_and_exit_2(source: str, tmp_path: Path) -> None:
    (tmp_path / "garbage.db").write_text("not a database")
    for target in (f"sqlite:///{tmp_path / 'garbage.db'}", "ftp://nowhere", source):
        argv = ["push", "--to", target, "--experiment", EXPERIMENT, "--tracking-uri", source]
        done = cli(*argv, cwd=tmp_path, check=False)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.startswith("softmax-lab push: ") and done.stderr.count("\n") == 1
    unknown = cli(
        "push",
        "--to",
        f"sqlite:///{tmp_path / 'x.db'}",
        "--experiment",
        "nope",
        "--tracking-uri",
        source,
        cwd=tmp_path,
        check=False,
    )
    assert unknown.returncode == 2 and "experiment 'nope' not found" in unknown.stderr


@pytest.fixture(scope="module")
def team() -> Iterator[TeamStore]:
    with running_team_store() as store:
        yield store


def test_push_into_the_team_store(source: str, team: TeamStore, tmp_path: Path) -> None:
    env = team.env()
    wrong = cli(
        "push",
        "--to",
        team.uri,
        "--experiment",
        EXPERIMENT,
        "--tracking-uri",
        source,
        cwd=tmp_path,
        env=team.env(password="wrong"),
        check=False,
    )
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1, wrong.stderr

    first = _push(source, team.uri, tmp_path, env=env)
    assert "copied 5 runs, skipped 0 already there, 0 running" in first
    with signed_in(team.admin):
        copy_of = _assert_same_runs(source, team.uri)
    again = _push(source, team.uri, tmp_path, env=env)
    assert "copied 0 runs, skipped 5 already there, 0 running" in again
    with signed_in(team.admin):
        assert _assert_same_runs(source, team.uri) == copy_of
        job = _a_job(copy_of, MlflowClient(team.uri))

    shown = cli(
        "compare", "--tracking-uri", team.uri, "--experiment", EXPERIMENT, cwd=tmp_path, env=env
    )
    assert "4 runs, best first by test/error" in shown.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rerun = cli("rerun", job, cwd=elsewhere, env=env)
    assert "reproduced exactly" in rerun.stdout
