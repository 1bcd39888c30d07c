"""A small real SQLite store of four logged runs, for the tests of compare's tables, filters
and diffs (``cmp_store`` and ``cmp_frame`` in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from softmax_lab.config.schema import Config, flatten
from softmax_lab.core.training import EpochMetrics
from softmax_lab.tracking.recorder import RunRecorder
from softmax_lab.tracking.store import prepare_store

# (lr, batch size, final test error); "diverged" fails after one epoch with the best error
RUNS = [
    ("0.2", 100, 0.30),
    ("0.05", 100, 0.10),
    ("0.1", 50, 0.20),
    ("0.5", 50, None),
]


def log_run(
    uri: str, experiment_id: str, lr: str, batch: int, test_error: float | None, epochs: int = 2
) -> str:
    cfg = flatten(Config())
    cfg.update({"optim.lr": float(lr), "optim.batch_size": batch, "optim.epochs": epochs})
    rec = RunRecorder.start(uri, experiment_id, run_name=f"lr={lr} B={batch}", params=cfg, tags={})
    if test_error is None:  # diverged: one epoch logged, then FAILED
        rec.log_epoch(EpochMetrics(1, 9.0, 0.9, 9.0, 0.01, 0.1))
        rec.finish("FAILED", reason="training diverged")
        return rec.run_id
    for e in range(1, epochs + 1):
        rec.log_epoch(EpochMetrics(e, 1.0 / e, test_error / 2, 1.5 / e, test_error * 2 / e, 0.1))
    rec.finish()
    return rec.run_id


def make_store(directory: Path) -> str:
    """A store in ``directory`` whose experiment ``cmp`` holds the four RUNS; its URI."""
    uri = f"sqlite:///{directory}/mlflow.db"
    experiment_id = prepare_store(uri, "cmp")
    for lr, batch, err in RUNS:
        log_run(uri, experiment_id, lr, batch, err)
    return uri
