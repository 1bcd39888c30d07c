"""Jobs stopped early by a judge ("pruned"): their runs in a real SQLite store end FINISHED,
tagged, with the epochs up to the stop; the other jobs of a fused group are unchanged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from softmax_lab.config.schema import Config, DatasetConfig, OptimConfig, TrackingConfig
from softmax_lab.core.model import model_from_params
from softmax_lab.core.training import EpochMetrics, evaluate
from softmax_lab.fusion.groups import group_plan
from softmax_lab.fusion.remote import train_alone
from softmax_lab.fusion.worker import FusedWorker
from softmax_lab.runs.fused_job import run_fused
from softmax_lab.runs.job import JobContext, JobOutcome, OpenJob, array_sha256, open_job, run_job
from softmax_lab.tracking import run_lookup
from softmax_lab.tracking.reading import metric_history

Judge = Callable[[EpochMetrics], bool]


def _config(digits_dir: Path, uri: str, experiment: str, *, lr: float, epochs: int) -> Config:
    return Config(
        dataset=DatasetConfig(name="idx", path=str(digits_dir)),
        optim=OptimConfig(lr=lr, epochs=epochs),
        tracking=TrackingConfig(uri=uri, experiment=experiment, log_model="none"),
    )


def _stop_at(epoch: int, seen: list[int] | None = None) -> Judge:
    def judge(m: EpochMetrics) -> bool:
        if seen is not None:
            seen.append(m.epoch)
        return m.epoch == epoch

    return judge


def _artifacts(uri: str, run_id: str, path: str) -> list[str]:
    return sorted(a.path for a in MlflowClient(uri).list_artifacts(run_id, path))


def _theta(uri: str, run_id: str, tmp: Path) -> np.ndarray:
    return np.load(run_lookup.download_artifact(uri, run_id, "params/theta.npy", tmp / run_id))


def test_a_judged_job_stops_after_the_epoch_its_judge_names(tmp_path: Path, digits_dir) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = _config(digits_dir, uri, "p", lr=0.1, epochs=5)
    seen: list[int] = []
    outcome = run_job(cfg, JobContext(tmp_path / "job", judge=_stop_at(2, seen)))
    assert seen == [1, 2]  # judged after each logged epoch, and not after the stop
    assert outcome.status == "FINISHED" and outcome.stopped_at == 2 and outcome.reason is None
    assert [m.epoch for m in outcome.history] == [1, 2]
    assert outcome.run_id is not None
    run = MlflowClient(uri).get_run(outcome.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["sl.pruned"] == "true" and run.data.tags["sl.stopped_at_epoch"] == "2"
    for key in ("train/loss", "test/error", "epoch_seconds"):
        assert [step for step, _ in metric_history(uri, outcome.run_id, key)] == [1, 2]
    # θ is that of the job trained for 2 epochs, bit for bit; pictures as for any run
    _, short = train_alone(_config(digits_dir, uri, "p", lr=0.1, epochs=2), cfg.dataset.load())
    assert run.data.tags["sl.sha256.theta"] == array_sha256(short.params["theta"])
    assert _artifacts(uri, outcome.run_id, "params") == ["params/theta.npy"]
    assert "plots/confusion.png" in _artifacts(uri, outcome.run_id, "plots")
    # a job whose judge never says stop is not tagged
    plain = run_job(cfg, JobContext(tmp_path / "plain", judge=lambda m: False))
    assert plain.stopped_at is None and len(plain.history) == 5 and plain.run_id is not None
    assert "sl.pruned" not in MlflowClient(uri).get_run(plain.run_id).data.tags


def test_a_pruned_job_that_exploded_is_still_flagged(tmp_path: Path, digits_dir) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = _config(digits_dir, uri, "p", lr=1000.0, epochs=5)
    outcome = run_job(cfg, JobContext(tmp_path / "job", judge=_stop_at(2)))
    assert outcome.status == "FINISHED" and outcome.stopped_at == 2
    assert outcome.reason is not None and "training exploded" in outcome.reason
    assert outcome.run_id is not None
    tags = MlflowClient(uri).get_run(outcome.run_id).data.tags
    assert tags["sl.exploded"] == "true" and tags["sl.pruned"] == "true"


# -- a fused group -------------------------------------------------------------------------

LRS = (0.05, 0.2, 0.5)
EPOCHS = 4


def _group(
    tmp: Path, digits_dir: Path, uri: str, experiment: str, judges: dict[int, Judge]
) -> tuple[list[Config], dict[int, OpenJob]]:
    configs = [_config(digits_dir, uri, experiment, lr=lr, epochs=EPOCHS) for lr in LRS]
    jobs = {
        j: open_job(cfg, JobContext(tmp / experiment / str(j), job_num=j, judge=judges.get(j)))
        for j, cfg in enumerate(configs)
    }
    return configs, jobs


def _run_group(
    tmp: Path, digits_dir: Path, uri: str, experiment: str, trainer: str, judges: dict[int, Judge]
) -> dict[int, JobOutcome]:
    """Run the group of ``LRS`` through ``run_fused``: trained in this process, by a lockstep
    worker, or by a worker that cannot be told to stop a column (``stream``)."""
    configs, jobs = _group(tmp, digits_dir, uri, experiment, judges)
    plan = group_plan(range(len(LRS)), configs)
    worker = None
    if trainer != "in-process":
        data = jobs[0].data
        assert data is not None
        worker = FusedWorker(
            data, plan, batch_size=100, shuffle=False, seed=0, lockstep=trainer == "lockstep"
        )
    return run_fused(plan, jobs, worker=worker)


def _losses(uri: str, run_id: str | None) -> list[tuple[int, float]]:
    assert run_id is not None
    return metric_history(uri, run_id, "train/loss")


@pytest.mark.parametrize("trainer", ["in-process", "lockstep"])
def test_a_job_of_a_fused_group_judged_to_stop_stops_and_the_others_train_on(
    tmp_path: Path, digits_dir, trainer: str
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # the same kind of trainer unjudged: the first epochs are then the same bit for bit
    reference = "stream" if trainer == "lockstep" else trainer
    plain = _run_group(tmp_path, digits_dir, uri, "plain", reference, {})
    seen: list[int] = []
    judged = _run_group(tmp_path, digits_dir, uri, "judged", trainer, {1: _stop_at(2, seen)})
    assert seen == [1, 2]
    client = MlflowClient(uri)
    stopped = judged[1]
    assert stopped.status == "FINISHED" and stopped.stopped_at == 2 and stopped.run_id
    tags = client.get_run(stopped.run_id).data.tags
    assert tags["sl.pruned"] == "true" and tags["sl.stopped_at_epoch"] == "2"
    assert _losses(uri, stopped.run_id) == _losses(uri, plain[1].run_id)[:2]
    # its θ is the one its last logged epoch measured
    theta = _theta(uri, stopped.run_id, tmp_path)
    data = DatasetConfig(name="idx", path=str(digits_dir)).load()
    loss, _ = evaluate(model_from_params({"theta": theta}), data.X_train, data.y_train)
    assert loss == pytest.approx(stopped.history[-1].train_loss, rel=1e-6)
    assert "plots/theta.png" in _artifacts(uri, stopped.run_id, "plots")
    for j in (0, 2):  # the stack narrowed after epoch 2: equal to float32 rounding
        assert judged[j].status == plain[j].status == "FINISHED"
        assert judged[j].stopped_at is None and len(judged[j].history) == EPOCHS
        assert "sl.pruned" not in client.get_run(str(judged[j].run_id)).data.tags
        mine, theirs = _losses(uri, judged[j].run_id), _losses(uri, plain[j].run_id)
        assert [s for s, _ in mine] == [s for s, _ in theirs] == list(range(1, EPOCHS + 1))
        assert mine[:2] == theirs[:2]  # before the stop, the same stack
        for (_, a), (_, b) in zip(mine, theirs, strict=True):
            assert a == pytest.approx(b, abs=1e-6)
        np.testing.assert_allclose(
            _theta(uri, str(judged[j].run_id), tmp_path),
            _theta(uri, str(plain[j].run_id), tmp_path),
            atol=1e-5,
        )


def test_a_stream_that_cannot_stop_a_column_closes_the_job_without_parameters(
    tmp_path: Path, digits_dir
) -> None:
    """As under the Ray launcher: the column trains on, its run is closed at the stop."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    outcomes = _run_group(tmp_path, digits_dir, uri, "stream", "stream", {1: _stop_at(2)})
    stopped = outcomes[1]
    assert stopped.status == "FINISHED" and stopped.stopped_at == 2 and stopped.run_id
    run = MlflowClient(uri).get_run(stopped.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["sl.pruned"] == "true" and run.data.tags["sl.stopped_at_epoch"] == "2"
    assert [s for s, _ in _losses(uri, stopped.run_id)] == [1, 2]  # later epochs ignored
    assert _artifacts(uri, stopped.run_id, "params") == []
    assert _artifacts(uri, stopped.run_id, "plots") == []
    assert "sl.sha256.theta" not in run.data.tags
    for j in (0, 2):
        assert outcomes[j].status == "FINISHED" and len(_losses(uri, outcomes[j].run_id)) == 4
