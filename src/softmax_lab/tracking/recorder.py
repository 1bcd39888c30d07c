"""Recording one job's run: ``RunRecorder`` (params, inputs, epoch metrics, artifacts, tags,
status)."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, Metric, Param, RunTag
from numpy.typing import ArrayLike

from softmax_lab.core.training import EpochMetrics
from softmax_lab.tracking.store import resolve_uri, retry_locked

logger = logging.getLogger(__name__)

# per epoch; val/loss and val/error only for a run with a validation split (dataset.val_size)
METRIC_KEYS = (
    "train/loss",
    "train/error",
    "val/loss",
    "val/error",
    "test/loss",
    "test/error",
    "epoch_seconds",
)
RunStatus = Literal["FINISHED", "FAILED", "KILLED"]
RUN_STATUSES: tuple[RunStatus, ...] = ("FINISHED", "FAILED", "KILLED")

BATCH_LIMIT = 100  # MLflow accepts at most 100 params or tags per log_batch call
TAG_VALUE_LIMIT = 8000  # MLflow rejects longer tag values

_T = TypeVar("_T")


def batches(items: list[_T], size: int = BATCH_LIMIT) -> Iterable[list[_T]]:
    return (items[i : i + size] for i in range(0, len(items), size))


def _clip(value: str) -> str:
    """A tag value MLflow accepts."""
    return value if len(value) <= TAG_VALUE_LIMIT else value[: TAG_VALUE_LIMIT - 1] + "…"


def terminate_run(client: MlflowClient, run_id: str, status: str, reason: str | None) -> None:
    """End the run with ``status``; ``reason`` goes to the tag ``sl.failure_reason`` first. A
    reason the store cannot take (e.g. it is full) does not keep the run from being ended."""
    if status not in RUN_STATUSES:
        raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
    problem: Exception | None = None
    if reason is not None:
        tag = _clip(reason)
        try:
            retry_locked(
                f"tag run {run_id}", lambda: client.set_tag(run_id, "sl.failure_reason", tag)
            )
        except Exception as err:  # e.g. a full store: closing the run matters more
            problem = err
    retry_locked(f"terminate run {run_id}", lambda: client.set_terminated(run_id, status))
    if problem is not None:
        logger.warning("run %s ended %s without its reason %r: %s", run_id, status, reason, problem)


class RunRecorder:
    """One job's MLflow run: params at start, metrics per epoch, artifacts, status.

    Use it as a context manager: leaving the block finishes the run FINISHED, or FAILED with the
    exception's text in ``sl.failure_reason`` (KILLED for KeyboardInterrupt), unless ``finish``
    was called already.

    Epoch metrics (and tags set with ``defer=True``) are written in batches: an epoch is written
    at once when the run's last write is at least ``flush_seconds`` (``FLUSH_SECONDS``) old, and
    otherwise waits for a later epoch or the end of the run. So slow epochs appear in the store
    (and the UI) as they finish, fast ones about once a second, and each batch is one store
    transaction instead of one per epoch. Everything pending is written before the run is
    finished, whatever its status, so a run that ends (even interrupted) keeps every epoch it
    trained; only a process killed outright (SIGKILL, power loss) can lose the pending epochs.
    """

    FLUSH_SECONDS = 1.0

    def __init__(
        self,
        client: MlflowClient,
        run_id: str,
        uri: str = "",
        *,
        artifact_uri: str | None = None,
        flush_seconds: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._client = client
        self._run_id = run_id
        self._status: str | None = None
        self.uri = uri  # the store, so others can reach the run
        self._artifact_uri = artifact_uri
        self._artifacts: Any = None  # the run's artifact repository, resolved once
        self.flush_seconds = self.FLUSH_SECONDS if flush_seconds is None else flush_seconds
        self._pending_metrics: list[Metric] = []
        self._pending_tags: dict[str, str] = {}
        self._clock = clock  # seconds, for the flush interval (tests pass a fake one)
        self._last_write = clock()

    @classmethod
    def start(
        cls,
        uri: str | None,
        experiment_id: str,
        *,
        run_name: str,
        params: Mapping[str, Any],
        tags: Mapping[str, Any],
        parent_run_id: str | None = None,
        flush_seconds: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> RunRecorder:
        """Create a RUNNING run and log all ``params`` (stringified) with it.

        Parameters
        ----------
        uri : str or None
            Tracking URI of a store made by ``prepare_store``.
        experiment_id : str
            As returned by ``prepare_store``.
        run_name : str
        params : mapping
            e.g. ``flatten(cfg)``; ``None`` is logged as ``"None"``.
        tags : mapping
            ``sl.*`` tags; ``sl.role`` defaults to ``"job"``.
        parent_run_id : str, optional
            The sweep run this job belongs to (sets ``mlflow.parentRunId``).
        flush_seconds : float, optional
            Longest time an epoch's metrics wait to be written; default ``FLUSH_SECONDS``, 0
            writes every epoch at once.
        clock : callable returning seconds
            Measures that time; ``time.perf_counter`` unless a test drives it.
        """
        uri = resolve_uri(uri)
        client = MlflowClient(uri)
        all_tags = {"sl.role": "job", **{k: str(v) for k, v in tags.items()}}
        if parent_run_id is not None:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = retry_locked(
            f"create run {run_name!r}",
            lambda: client.create_run(experiment_id, run_name=run_name, tags=all_tags),
        )
        recorder = cls(
            client,
            run.info.run_id,
            uri,
            artifact_uri=run.info.artifact_uri,
            flush_seconds=flush_seconds,
            clock=clock,
        )
        try:
            for chunk in batches([Param(k, str(v)) for k, v in params.items()]):
                recorder._log_batch(params=chunk)
        except BaseException as err:
            try:
                recorder.finish("FAILED", reason=f"logging params failed: {err}")
            except Exception as closing:  # the error that stopped the params is the one raised
                logger.warning("could not mark run %s FAILED: %s", recorder.run_id, closing)
            raise
        return recorder

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def status(self) -> str | None:
        """None while the run is open; its final status once ``finish`` was called."""
        return self._status

    def _log_batch(
        self,
        *,
        metrics: list[Metric] | None = None,
        params: list[Param] | None = None,
        tags: list[RunTag] | None = None,
    ) -> None:
        retry_locked(
            f"log to run {self._run_id}",
            lambda: self._client.log_batch(
                self._run_id,
                metrics=metrics or [],
                params=params or [],
                tags=tags or [],
                synchronous=True,  # never queued in memory, even with MLFLOW_ENABLE_ASYNC_LOGGING
            ),
        )

    def _hold(self) -> None:
        if self._clock() - self._last_write >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the pending epoch metrics and deferred tags now (one batch per 1,000 metrics)."""
        metrics, tags = self._pending_metrics, [RunTag(k, v) for k, v in self._pending_tags.items()]
        self._pending_metrics, self._pending_tags = [], {}
        while metrics or tags:  # MLflow takes at most 1000 metrics and 100 tags per batch
            self._log_batch(metrics=metrics[:1000], tags=tags[:BATCH_LIMIT])
            metrics, tags = metrics[1000:], tags[BATCH_LIMIT:]
        self._last_write = self._clock()

    def log_epoch(self, m: EpochMetrics) -> None:
        """Log the epoch's metrics at ``step = m.epoch`` (written within ``flush_seconds``): the
        ``METRIC_KEYS``, ``val/…`` only when measured (a run with a validation split)."""
        now = int(time.time() * 1000)
        values = (
            m.train_loss,
            m.train_error,
            m.val_loss,
            m.val_error,
            m.test_loss,
            m.test_error,
            m.seconds,
        )
        self._pending_metrics.extend(
            Metric(key, float(value), now, m.epoch)
            for key, value in zip(METRIC_KEYS, values, strict=True)
            if value is not None
        )
        self._hold()

    def _repository(self) -> Any:
        """The run's artifact repository (one lookup of the run's artifact URI per run)."""
        if self._artifacts is None:
            from mlflow.store.artifact.artifact_repository_registry import (
                get_artifact_repository,
            )

            if self._artifact_uri is None:
                self._artifact_uri = self._client.get_run(self._run_id).info.artifact_uri
            self._artifacts = get_artifact_repository(
                self._artifact_uri, tracking_uri=self.uri or None
            )
        return self._artifacts

    def log_array(self, name: str, array: ArrayLike) -> None:
        """Log ``array`` as the artifact ``params/<name>.npy`` (e.g. ``params/theta.npy``)."""
        if not name or any(c in name for c in "/\\") or name.startswith("."):
            raise ValueError(f"array name must be a plain file stem like 'theta', got {name!r}")
        with tempfile.TemporaryDirectory(prefix="softmax-lab-") as tmp:
            path = Path(tmp) / f"{name}.npy"
            np.save(path, np.asarray(array), allow_pickle=False)
            self._repository().log_artifact(str(path), "params")

    def log_text(self, artifact_file: str, text: str) -> None:
        """Log ``text`` as the artifact ``artifact_file`` (e.g. ``config.yaml``)."""
        parent, _, name = artifact_file.rpartition("/")
        with tempfile.TemporaryDirectory(prefix="softmax-lab-") as tmp:
            path = Path(tmp) / name
            path.write_text(text, encoding="utf-8")
            self._repository().log_artifact(str(path), parent or None)

    def log_file(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        """Log the file ``local_path`` into the artifact folder ``artifact_path`` (None: root)."""
        path = Path(local_path)
        if not path.is_file():
            raise FileNotFoundError(f"log_file: expected an existing file, got {str(path)!r}")
        self._repository().log_artifact(str(path), artifact_path)

    def log_inputs(self, datasets: Sequence[DatasetInput]) -> None:
        """Log the run's dataset inputs (``run_inputs.dataset_inputs``) in one store call: one
        transaction for every part, whatever their number."""
        retry_locked(
            f"log inputs of run {self._run_id}",
            lambda: self._client.log_inputs(self._run_id, datasets=list(datasets)),
        )

    def set_tags(self, tags: Mapping[str, Any], *, defer: bool = False) -> None:
        """Set (or overwrite) tags; values are stringified.

        ``defer=True`` writes them with the next batch of metrics (or at ``finish``) instead of
        in a transaction of their own.
        """
        self._pending_tags.update({k: str(v) for k, v in tags.items()})
        if not defer:
            self.flush()

    def finish(self, status: RunStatus | str = "FINISHED", reason: str | None = None) -> None:
        """Write what is pending, then terminate the run with ``status``; ``reason`` goes to the
        tag ``sl.failure_reason``.

        Raises
        ------
        RuntimeError
            If the run was finished already.
        """
        if self._status is not None:
            raise RuntimeError(f"run {self._run_id} was already finished as {self._status}")
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
        if reason is not None:  # written with the last metrics: one transaction fewer
            self._pending_tags["sl.failure_reason"] = _clip(reason)
        try:
            self.flush()
        except Exception:  # a run is never left RUNNING because its last batch failed
            terminate_run(self._client, self._run_id, status, reason)
            self._status = status
            raise
        terminate_run(self._client, self._run_id, status, None)
        self._status = status

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._status is not None:
            return
        if exc is None:
            self.finish("FINISHED")
            return
        status: RunStatus = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        try:
            self.finish(status, reason=f"{type(exc).__name__}: {exc}")
        except Exception as closing:  # the job's own exception is the one to propagate
            logger.warning("could not mark run %s %s: %s", self._run_id, status, closing)
