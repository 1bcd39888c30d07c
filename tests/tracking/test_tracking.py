"""softmax_lab.tracking against real MLflow stores: SQLite files in tmp dirs and a live server."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from helpers.servers import free_port, wait_until_healthy
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from softmax_lab.core.training import EpochMetrics
from softmax_lab.errors import TrackingError
from softmax_lab.tracking import provenance, reading
from softmax_lab.tracking.provenance import environment_tags
from softmax_lab.tracking.reading import (
    find_runs_by_config_hash,
    latest_experiment,
    metric_history,
    runs_frame,
)
from softmax_lab.tracking.recorder import METRIC_KEYS, RunRecorder
from softmax_lab.tracking.run_lookup import download_artifact, run_info
from softmax_lab.tracking.run_writes import close_dead_children, finish_run, start_sweep_run
from softmax_lab.tracking.store import (
    DEFAULT_TRACKING_URI,
    artifact_root_for,
    prepare_store,
    resolve_uri,
    retry_locked,
)


def epoch_metrics(epoch: int, scale: float = 1.0, *, val: bool = False) -> EpochMetrics:
    """Distinct, exactly representable values per epoch and metric (``val``: with val/…)."""
    return EpochMetrics(
        epoch=epoch,
        train_loss=scale * 2.0 / epoch,
        train_error=scale * 0.5 / epoch,
        test_loss=scale * 2.5 / epoch,
        test_error=scale * 0.75 / epoch,
        seconds=0.25 * epoch,
        val_loss=scale * 3.0 / epoch if val else None,
        val_error=scale * 0.625 / epoch if val else None,
    )


# the metric key of each EpochMetrics field
FIELD_OF = {
    "train/loss": "train_loss",
    "train/error": "train_error",
    "val/loss": "val_loss",
    "val/error": "val_error",
    "test/loss": "test_loss",
    "test/error": "test_error",
    "epoch_seconds": "seconds",
}


def metric_values(m: EpochMetrics) -> dict[str, float]:
    """The metrics a run logs for ``m``: its measured fields, by metric key."""
    fields = m.as_dict()
    return {key: fields[f] for key, f in FIELD_OF.items() if f in fields}


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, str]:
    """A fresh SQLite store with the experiment ``test``: (uri, experiment id)."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return uri, prepare_store(uri, "test")


def log_job(
    uri: str,
    experiment_id: str,
    name: str,
    *,
    epochs: int = 3,
    params: dict[str, object] | None = None,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
    scale: float = 1.0,
) -> str:
    with RunRecorder.start(
        uri,
        experiment_id,
        run_name=name,
        params=params or {"optim.lr": 0.1},
        tags=tags or {},
        parent_run_id=parent_run_id,
    ) as rec:
        for e in range(1, epochs + 1):
            rec.log_epoch(epoch_metrics(e, scale))
    return rec.run_id


# --- the store --------------------------------------------------------------------------------


def test_prepare_store_is_idempotent(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/sub/mlflow.db"
    first = prepare_store(uri, "exp")
    assert prepare_store(uri, "exp") == first
    assert prepare_store(uri, "other") != first
    experiment = MlflowClient(uri).get_experiment(first)
    assert experiment.name == "exp"
    assert experiment.artifact_location == (tmp_path / "sub" / "mlartifacts").as_uri()
    with closing(sqlite3.connect(tmp_path / "sub" / "mlflow.db")) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_prepare_store_switches_an_existing_store_to_wal(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(uri).create_experiment("made by plain mlflow")
    prepare_store(uri, "exp")
    with closing(sqlite3.connect(tmp_path / "mlflow.db")) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_prepare_store_rejects_a_deleted_experiment(store: tuple[str, str]) -> None:
    uri, experiment_id = store
    MlflowClient(uri).delete_experiment(experiment_id)
    with pytest.raises(TrackingError, match=r"experiment 'test' in .* is deleted: restore it"):
        prepare_store(uri, "test")


def _schema(db: Path) -> list[tuple[str, list[str]]]:
    """Every table, index and trigger with its SQL as a sorted list of lines (stripped of commas).

    Sorted because MLflow's own migrations write a table's constraints in an order that varies
    from process to process.
    """
    with closing(sqlite3.connect(db)) as con:
        rows = con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        return [
            (f"{t} {n}", sorted(line.strip().rstrip(",") for line in (s or "").splitlines()))
            for t, n, s in rows
        ]


def _non_time_rows(db: Path, table: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db)) as con:
        cursor = con.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cursor.description]
        keep = [i for i, n in enumerate(names) if not n.endswith("_time")]
        return [tuple(row[i] for i in keep) for row in cursor]


def test_store_from_template_is_the_store_mlflow_builds_itself(tmp_path: Path) -> None:
    from mlflow.store.db.utils import _get_latest_schema_revision
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    ours, theirs = tmp_path / "ours" / "mlflow.db", tmp_path / "theirs" / "mlflow.db"
    prepare_store(f"sqlite:///{ours}", "exp")
    theirs.parent.mkdir()
    root = artifact_root_for(f"sqlite:///{ours}")
    assert root is not None
    SqlAlchemyStore(f"sqlite:///{theirs}", root).engine.dispose()  # MLflow's own migrations

    assert _schema(ours) == _schema(theirs)
    assert _non_time_rows(ours, "alembic_version") == [(_get_latest_schema_revision(),)]
    assert _non_time_rows(ours, "alembic_version") == _non_time_rows(theirs, "alembic_version")
    default_ours = _non_time_rows(ours, "experiments")[0]
    assert default_ours == _non_time_rows(theirs, "experiments")[0]
    assert "mlartifacts/0" in str(default_ours)
    # a fresh process (no cached engine) opens it, verifying the schema revision, and logs to it
    script = textwrap.dedent(
        f"""
        from mlflow import MlflowClient
        client = MlflowClient({f"sqlite:///{ours}"!r})
        run = client.create_run(client.get_experiment_by_name("exp").experiment_id)
        client.log_metric(run.info.run_id, "m", 1.5, step=1)
        client.set_terminated(run.info.run_id)
        print(client.get_run(run.info.run_id).data.metrics["m"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1.5"


def test_prepare_store_rebuilds_a_template_mlflow_rejects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    prepare_store(f"sqlite:///{tmp_path}/a/mlflow.db", "exp")  # builds the template
    (template,) = (tmp_path / "cache" / "softmax-lab" / "mlflow").glob("*.db")
    with closing(sqlite3.connect(template)) as con:
        con.execute("UPDATE alembic_version SET version_num = 'not-a-revision'")
        con.commit()
    uri = f"sqlite:///{tmp_path}/b/mlflow.db"
    experiment_id = prepare_store(uri, "exp")
    assert MlflowClient(uri).get_experiment(experiment_id).name == "exp"
    assert not template.exists()  # dropped; the next new store builds a good one


def test_resolve_uri_prefers_argument_then_environment_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert DEFAULT_TRACKING_URI == "sqlite:///outputs/mlflow.db"
    assert resolve_uri(None) == f"sqlite:///{tmp_path}/outputs/mlflow.db"
    assert (tmp_path / "outputs").is_dir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///from-env/m.db")
    assert resolve_uri(None) == f"sqlite:///{tmp_path}/from-env/m.db"
    assert resolve_uri("sqlite:///given/m.db") == f"sqlite:///{tmp_path}/given/m.db"
    assert resolve_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert resolve_uri("postgresql://u@db/mlflow") == "postgresql://u@db/mlflow"


def test_resolve_uri_keeps_absolute_paths_and_query(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/x/m.db?timeout=30"
    assert resolve_uri(uri) == uri
    assert (tmp_path / "x").is_dir()


def test_resolve_uri_rejects_percent_in_sqlite_path(tmp_path: Path) -> None:
    with pytest.raises(TrackingError, match="must not contain '%'"):
        resolve_uri(f"sqlite:///{tmp_path}/a%20b/m.db")


def test_artifact_root_for_sqlite_and_server(tmp_path: Path) -> None:
    root = artifact_root_for(f"sqlite:///{tmp_path}/m.db")
    assert root == (tmp_path / "mlartifacts").as_uri()
    assert artifact_root_for("http://127.0.0.1:5000") is None


# --- recording a run --------------------------------------------------------------------------


def test_run_recorder_logs_params_tags_epochs_and_arrays(
    store: tuple[str, str], tmp_path: Path
) -> None:
    uri, experiment_id = store
    params = {"optim.lr": 0.2, "optim.batch_size": 100, "dataset.path": None, "seed": 0}
    theta = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    with RunRecorder.start(
        uri,
        experiment_id,
        run_name="softmax lr=0.2",
        params=params,
        tags={"sl.config_hash": "abc123", "sl.hydra_job_num": 3},
    ) as rec:
        for e in (1, 2, 3):
            rec.log_epoch(epoch_metrics(e))
        rec.log_array("theta", theta)
        rec.log_text("config.yaml", "optim:\n  lr: 0.2\n")
        (tmp_path / "curves.png").write_bytes(b"not really a png")
        rec.log_file(tmp_path / "curves.png", "plots")
        rec.set_tags({"sl.dataset_fingerprint": "f00d"})
    assert rec.status == "FINISHED"

    assert set(FIELD_OF) == set(METRIC_KEYS)
    for key in METRIC_KEYS:
        # val/loss and val/error are logged only when measured (a validation split)
        expected = [(e, v[key]) for e in (1, 2, 3) if key in (v := metric_values(epoch_metrics(e)))]
        assert metric_history(uri, rec.run_id, key) == expected
    assert metric_history(uri, rec.run_id, "val/error") == []
    run = MlflowClient(uri).get_run(rec.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {
        "optim.lr": "0.2",
        "optim.batch_size": "100",
        "dataset.path": "None",
        "seed": "0",
    }
    tags = run.data.tags
    assert tags["mlflow.runName"] == "softmax lr=0.2"
    assert tags["sl.role"] == "job"
    assert tags["sl.config_hash"] == "abc123"
    assert tags["sl.hydra_job_num"] == "3"
    assert tags["sl.dataset_fingerprint"] == "f00d"
    assert "mlflow.parentRunId" not in tags

    npy = download_artifact(uri, rec.run_id, "params/theta.npy", tmp_path / "dl")
    loaded = np.load(npy)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, theta)
    config = download_artifact(uri, rec.run_id, "config.yaml", tmp_path / "dl")
    assert config.read_text() == "optim:\n  lr: 0.2\n"
    png = download_artifact(uri, rec.run_id, "plots/curves.png", tmp_path / "dl")
    assert png.read_bytes() == b"not really a png"


def test_run_recorder_logs_validation_metrics_when_measured(store: tuple[str, str]) -> None:
    uri, experiment_id = store
    with RunRecorder.start(uri, experiment_id, run_name="val", params={}, tags={}) as rec:
        for e in (1, 2):
            rec.log_epoch(epoch_metrics(e, val=True))
    for key in METRIC_KEYS:
        expected = [(e, metric_values(epoch_metrics(e, val=True))[key]) for e in (1, 2)]
        assert metric_history(uri, rec.run_id, key) == expected
    assert metric_history(uri, rec.run_id, "val/loss") == [(1, 3.0), (2, 1.5)]


def test_run_recorder_with_flush_seconds_0_writes_each_epoch_through_at_once(
    store: tuple[str, str],
) -> None:
    uri, experiment_id = store
    rec = RunRecorder.start(uri, experiment_id, run_name="r", params={}, tags={}, flush_seconds=0)
    rec.log_epoch(epoch_metrics(1))
    # another client (as another process would) sees the epoch before the run ends
    assert metric_history(uri, rec.run_id, "test/error") == [(1, 0.75)]
    rec.finish()


def test_run_recorder_batches_fast_epochs_and_writes_them_all_at_finish(
    store: tuple[str, str],
) -> None:
    uri, experiment_id = store
    rec = RunRecorder.start(uri, experiment_id, run_name="r", params={}, tags={}, flush_seconds=60)
    for e in (1, 2, 3):
        rec.log_epoch(epoch_metrics(e))
    rec.set_tags({"sl.config_hash": "abc"}, defer=True)
    assert metric_history(uri, rec.run_id, "test/error") == []  # held: one write, not three
    assert "sl.config_hash" not in MlflowClient(uri).get_run(rec.run_id).data.tags
    rec.finish()
    run = MlflowClient(uri).get_run(rec.run_id)
    assert [step for step, _ in metric_history(uri, rec.run_id, "test/error")] == [1, 2, 3]
    assert run.data.tags["sl.config_hash"] == "abc"
    assert run.info.status == "FINISHED"


def test_run_recorder_writes_an_epoch_at_once_when_the_last_write_is_old(
    store: tuple[str, str],
) -> None:
    uri, experiment_id = store
    now = [0.0]  # the recorder's clock, in seconds: advanced by the test, not by waiting
    rec = RunRecorder.start(
        uri,
        experiment_id,
        run_name="r",
        params={},
        tags={},
        flush_seconds=0.5,
        clock=lambda: now[0],
    )
    now[0] += 0.55  # a slow epoch
    rec.log_epoch(epoch_metrics(1))  # the last write is old: written at once
    now[0] += 0.1
    rec.log_epoch(epoch_metrics(2))  # right after a write: waits for a later one
    assert metric_history(uri, rec.run_id, "test/error") == [(1, 0.75)]
    now[0] += 0.45  # 0.55 s after the last write
    rec.log_epoch(epoch_metrics(3))  # writes itself and the epoch that waited
    assert [step for step, _ in metric_history(uri, rec.run_id, "test/error")] == [1, 2, 3]
    rec.finish()


@pytest.mark.parametrize(
    ("error", "status"), [(KeyboardInterrupt, "KILLED"), (RuntimeError, "FAILED")]
)
def test_an_interrupted_or_failed_run_keeps_every_pending_epoch(
    store: tuple[str, str], error: type[BaseException], status: str
) -> None:
    uri, experiment_id = store
    with (
        pytest.raises(error),
        RunRecorder.start(
            uri, experiment_id, run_name="r", params={}, tags={}, flush_seconds=60
        ) as rec,
    ):
        for e in (1, 2):
            rec.log_epoch(epoch_metrics(e))
        raise error("stop")
    assert MlflowClient(uri).get_run(rec.run_id).info.status == status
    assert [step for step, _ in metric_history(uri, rec.run_id, "train/loss")] == [1, 2]


def test_context_manager_marks_run_failed_with_the_reason(store: tuple[str, str]) -> None:
    uri, experiment_id = store
    with (
        pytest.raises(RuntimeError, match="boom"),
        RunRecorder.start(uri, experiment_id, run_name="r", params={}, tags={}) as rec,
    ):
        rec.log_epoch(epoch_metrics(1))
        raise RuntimeError("boom")
    run = MlflowClient(uri).get_run(rec.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["sl.failure_reason"] == "RuntimeError: boom"
    assert run.info.end_time is not None


def test_context_manager_keeps_an_explicit_finish(store: tuple[str, str]) -> None:
    uri, experiment_id = store
    with RunRecorder.start(uri, experiment_id, run_name="r", params={}, tags={}) as rec:
        rec.finish("FAILED", reason="diverged in epoch 2")
    run = MlflowClient(uri).get_run(rec.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["sl.failure_reason"] == "diverged in epoch 2"
    with pytest.raises(RuntimeError, match="already finished as FAILED"):
        rec.finish()


def test_finish_rejects_an_unknown_status(store: tuple[str, str]) -> None:
    uri, experiment_id = store
    rec = RunRecorder.start(uri, experiment_id, run_name="r", params={}, tags={})
    with pytest.raises(
        ValueError, match="run status must be one of FINISHED, FAILED, KILLED, got 'DONE'"
    ):
        rec.finish("DONE")
    rec.finish("KILLED")


def test_log_array_rejects_a_path_as_name(store: tuple[str, str]) -> None:
    uri, experiment_id = store
    rec = RunRecorder.start(uri, experiment_id, run_name="r", params={}, tags={})
    with pytest.raises(ValueError, match="plain file stem like 'theta', got 'a/b'"):
        rec.log_array("a/b", np.zeros(2))
    rec.finish()


def test_log_file_rejects_a_missing_file(store: tuple[str, str], tmp_path: Path) -> None:
    uri, experiment_id = store
    rec = RunRecorder.start(uri, experiment_id, run_name="r", params={}, tags={})
    with pytest.raises(FileNotFoundError, match="expected an existing file"):
        rec.log_file(tmp_path / "nope.png")
    rec.finish()


def test_sweep_parent_with_two_children(store: tuple[str, str]) -> None:
    uri, experiment_id = store
    parent = start_sweep_run(
        uri, experiment_id, sweep_id="sw1", run_name="sweep sw1", tags={"sl.overrides": "a b"}
    )
    children = {
        log_job(uri, experiment_id, f"child {i}", tags={"sl.sweep_id": "sw1"}, parent_run_id=parent)
        for i in range(2)
    }
    log_job(uri, experiment_id, "unrelated")
    finish_run(uri, parent, "FINISHED")

    df = runs_frame(uri, "test", sweep_id="sw1")
    assert set(df["run_id"]) == children
    assert set(df["parent_run_id"]) == {parent}
    assert set(df["sweep_id"]) == {"sw1"}
    assert set(df["status"]) == {"FINISHED"}
    assert list(df["metrics.test/error"]) == [0.25, 0.25]  # the last epoch's value

    with_parent = runs_frame(uri, "test", sweep_id="sw1", include_parents=True)
    assert set(with_parent["run_id"]) == children | {parent}
    client = MlflowClient(uri)
    assert client.get_run(parent).info.status == "FINISHED"
    assert client.get_run(parent).data.tags["sl.role"] == "sweep"
    for child in children:
        assert client.get_run(child).data.tags["mlflow.parentRunId"] == parent
    assert len(runs_frame(uri, "test")) == 3  # all jobs, no parent


def test_close_dead_children_kills_only_the_parents_running_runs(
    store: tuple[str, str],
) -> None:
    uri, experiment_id = store
    parent = start_sweep_run(uri, experiment_id, sweep_id="sw1", run_name="sweep sw1", tags={})
    client = MlflowClient(uri)
    as_child = {"mlflow.parentRunId": parent}
    dead = [client.create_run(experiment_id, tags=as_child).info.run_id for _ in range(2)]
    done = log_job(uri, experiment_id, "done", tags={}, parent_run_id=parent)
    stranger = client.create_run(experiment_id, tags={"sl.role": "job"}).info.run_id

    assert sorted(close_dead_children(uri, [experiment_id], parent, "its sweep died")) == sorted(
        dead
    )
    for run_id in dead:
        run = client.get_run(run_id)
        assert run.info.status == "KILLED"
        assert run.data.tags["sl.failure_reason"] == "its sweep died"
    assert client.get_run(done).info.status == "FINISHED"
    assert client.get_run(stranger).info.status == "RUNNING", "not a child of the sweep"
    assert client.get_run(parent).info.status == "RUNNING"
    assert close_dead_children(uri, [experiment_id], parent, "again") == []


def test_runs_frame_columns_and_filter(store: tuple[str, str]) -> None:
    uri, experiment_id = store
    fast = log_job(uri, experiment_id, "fast", params={"optim.lr": 0.5, "seed": 1})
    log_job(uri, experiment_id, "slow", params={"optim.lr": 0.05, "seed": 1})
    df = runs_frame(uri, "test")
    assert list(df.columns[:7]) == [
        "run_id",
        "run_name",
        "status",
        "start_time",
        "end_time",
        "parent_run_id",
        "sweep_id",
    ]
    assert {"params.optim.lr", "params.seed", "metrics.epoch_seconds", "tags.sl.role"} <= set(
        df.columns
    )
    assert df["start_time"].notna().all()
    only = runs_frame(uri, "test", filter_string="params.`optim.lr` = '0.5'")
    assert list(only["run_id"]) == [fast]


def test_runs_frame_empty_has_the_fixed_columns(store: tuple[str, str]) -> None:
    uri, _ = store
    df = runs_frame(uri, "test", sweep_id="nothing")
    assert df.empty
    assert list(df.columns) == list(reading.FRAME_COLUMNS)


def test_runs_frame_unknown_experiment_names_it_and_lists_existing(
    store: tuple[str, str],
) -> None:
    uri, _ = store
    with pytest.raises(TrackingError, match=r"experiment 'tset' not found in .*'Default', 'test'"):
        runs_frame(uri, "tset")


def test_runs_frame_rejects_a_bad_filter(store: tuple[str, str]) -> None:
    uri, _ = store
    with pytest.raises(TrackingError, match="invalid run filter"):
        runs_frame(uri, "test", filter_string="params.lr ~~ 3")


def test_reading_a_missing_store_does_not_create_it(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/none/mlflow.db"
    with pytest.raises(TrackingError, match="no MLflow store at"):
        runs_frame(uri, "test")
    assert not (tmp_path / "none").exists()
    assert latest_experiment(uri) is None
    assert find_runs_by_config_hash(uri, "test", "abc") == []


def test_metric_history_of_unknown_run(store: tuple[str, str]) -> None:
    uri, _ = store
    with pytest.raises(TrackingError, match="run 'f00' not found"):
        metric_history(uri, "f00", "train/loss")


def test_run_id_prefix_shorter_than_4_characters_is_too_short(store: tuple[str, str]) -> None:
    uri, experiment_id = store
    run_id = log_job(uri, experiment_id, "a")
    with pytest.raises(
        TrackingError, match=rf"prefix '{run_id[:3]}' is too short: give at least 4"
    ):
        run_info(uri, run_id[:3])
    assert run_info(uri, run_id[:4]).run_id == run_id


def test_latest_experiment_is_the_one_with_the_newest_run(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    older, newer = prepare_store(uri, "older"), prepare_store(uri, "newer")
    assert latest_experiment(uri) is None
    first = log_job(uri, newer, "a")
    started = MlflowClient(uri).get_run(first).info.start_time  # ms
    while time.time() * 1000 <= started + 1:  # the next run starts in a later millisecond
        pass
    log_job(uri, older, "b")
    assert latest_experiment(uri) == "older"


def test_find_runs_by_config_hash(store: tuple[str, str]) -> None:
    uri, experiment_id = store
    done = log_job(uri, experiment_id, "a", tags={"sl.config_hash": "abc"})
    log_job(uri, experiment_id, "b", tags={"sl.config_hash": "def"})
    assert find_runs_by_config_hash(uri, "test", "abc") == [(done, "FINISHED")]
    assert find_runs_by_config_hash(uri, "test", "fff") == []
    assert find_runs_by_config_hash(uri, "no such experiment", "abc") == []
    with pytest.raises(ValueError, match="config_hash must be a hex digest"):
        find_runs_by_config_hash(uri, "test", "x' or '1")


def test_environment_tags() -> None:
    tags = environment_tags()
    assert set(tags) == {"sl.version", "sl.git_commit", "sl.numpy", "sl.blas", "sl.threads"}
    assert tags["sl.numpy"] == np.__version__
    assert re.fullmatch(r"([0-9a-f]{40}(-dirty)?)?", tags["sl.git_commit"])
    assert int(tags["sl.threads"]) >= 1
    head = subprocess.run(
        ["git", "-C", str(Path(provenance.__file__).parent), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    if head.returncode == 0:  # the tests run from a checkout
        assert tags["sl.git_commit"].removesuffix("-dirty") == head.stdout.strip()


# --- SQLite under concurrent writers ----------------------------------------------------------


def test_retry_locked_retries_only_a_locked_database() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise MlflowException("(sqlite3.OperationalError) database is locked")
        return "written"

    assert retry_locked("test write", flaky) == "written"
    assert len(calls) == 3

    def broken() -> None:
        raise MlflowException("no such table: runs")

    with pytest.raises(MlflowException, match="no such table"):
        retry_locked("test write", broken)


def test_log_epoch_waits_out_another_writers_lock(store: tuple[str, str], tmp_path: Path) -> None:
    uri, experiment_id = store
    rec = RunRecorder.start(uri, experiment_id, run_name="r", params={}, tags={}, flush_seconds=0)
    locked, released = threading.Event(), threading.Event()

    def hold_write_lock() -> None:
        with closing(sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)) as con:
            con.execute("BEGIN EXCLUSIVE")
            locked.set()
            time.sleep(1.5)  # long enough for log_epoch to meet the lock, at least once
            released.set()
            con.execute("COMMIT")

    holder = threading.Thread(target=hold_write_lock)
    holder.start()
    assert locked.wait(10)
    rec.log_epoch(epoch_metrics(1))
    assert released.is_set(), "log_epoch wrote while another connection held the write lock"
    holder.join()
    rec.finish()
    assert metric_history(uri, rec.run_id, "train/loss") == [(1, 2.0)]


WORKER = """
import sys, time
from pathlib import Path
from softmax_lab.tracking.recorder import RunRecorder
from softmax_lab.tracking.store import prepare_store
from softmax_lab.core.training import EpochMetrics

uri, signals, i = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
(signals / f"ready{i}").touch()
while not (signals / "go").exists():
    time.sleep(0.005)
experiment_id = prepare_store(uri, "concurrent")
with RunRecorder.start(
    uri, experiment_id, run_name=f"job {i}", params={"job": i}, tags={"sl.hydra_job_num": i}
) as rec:
    for e in range(1, 21):
        rec.log_epoch(EpochMetrics(e, i + e / 100, 0.5, i + e / 50, 0.25, 0.01))
print(rec.run_id)
"""


@pytest.mark.slow
def test_four_processes_log_into_one_fresh_store_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a fresh template cache too: the four race to build the template and to create the store
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    signals = tmp_path / "signals"
    signals.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, uri, str(signals), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    try:
        deadline = time.monotonic() + 120
        while len(list(signals.glob("ready*"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        (signals / "go").touch()  # all imports done: they now create and write at once
        outputs = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert "database is locked" not in err
    run_ids = {out.strip() for out, _ in outputs}
    df = runs_frame(uri, "concurrent")
    assert set(df["run_id"]) == run_ids and len(run_ids) == 4
    assert set(df["status"]) == {"FINISHED"}
    for run_id in run_ids:
        for key in metric_values(epoch_metrics(1)):
            assert [s for s, _ in metric_history(uri, run_id, key)] == list(range(1, 21))


# --- a live tracking server -------------------------------------------------------------------


@pytest.mark.slow
def test_run_recorder_against_a_live_mlflow_server(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path}/srv.db",
            "--artifacts-destination",
            str(tmp_path / "srv-artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers form one process group, ended together below
        # as `softmax-lab ui` runs it: no job runner (a lock file in /tmp, a queue in /dev/shm)
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    try:
        wait_until_healthy(url, server, (tmp_path / "server.log").read_text, timeout=60)

        assert resolve_uri(url) == url
        experiment_id = prepare_store(url, "served")
        assert prepare_store(url, "served") == experiment_id
        with RunRecorder.start(
            url, experiment_id, run_name="remote", params={"optim.lr": 0.1}, tags={}
        ) as rec:
            for e in (1, 2):
                rec.log_epoch(epoch_metrics(e))
            rec.log_array("theta", np.eye(3, dtype=np.float32))
        assert metric_history(url, rec.run_id, "train/loss") == [(1, 2.0), (2, 1.0)]
        df = runs_frame(url, "served")
        assert list(df["run_id"]) == [rec.run_id]
        assert df.loc[0, "params.optim.lr"] == "0.1"
        npy = download_artifact(url, rec.run_id, "params/theta.npy", tmp_path / "dl")
        np.testing.assert_array_equal(np.load(npy), np.eye(3, dtype=np.float32))
        assert list((tmp_path / "srv-artifacts").rglob("theta.npy"))  # stored by the server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
