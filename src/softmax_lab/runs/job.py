"""One job end to end: data → hypothesis → SGD → MLflow run with metrics, θ and pictures.

Takes a validated ``Config`` dataclass (never a DictConfig) and plain context, so the CLI, the
sweeper, ``rerun`` and a notebook all run jobs the same way. A job never raises for a training
failure: it records the run as FAILED with the reason and returns a ``JobOutcome``, so a sweep
survives one bad job. Ctrl-C / SIGTERM close the run as KILLED and propagate.
Closing a trained job draws its pictures (``softmax_lab.pictures.run_pictures``) and logs them.
A job whose context has a ``judge`` is stopped early ("pruned") after the first epoch the judge
says so: it ends FINISHED, tagged ``sl.pruned=true`` and ``sl.stopped_at_epoch``.
A full disk (``OSError``, e.g. ``ENOSPC`` in the output directory) or a full store
(``StoreFullError``) fails the job's run with that cause, in one log line, not a traceback; a run
whose store cannot take even its FAILED status is reported as possibly left RUNNING.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from softmax_lab.config.schema import Config, config_hash, flatten, validate
from softmax_lab.core.loss import confusion_matrix
from softmax_lab.core.model import Hypothesis
from softmax_lab.core.training import (
    EVAL_CHUNK,
    DivergenceError,
    EpochMetrics,
    TrainResult,
    detect_explosion,
)
from softmax_lab.data.dataset import Dataset
from softmax_lab.errors import InputError, StoreFullError
from softmax_lab.fusion.remote import train_alone
from softmax_lab.runs.timings import phase
from softmax_lab.tracking import models, provenance, recorder, run_inputs, store

__all__ = [
    "JobContext",
    "JobOutcome",
    "OpenJob",
    "array_sha256",
    "close_job",
    "data_parts",
    "log_failure",
    "open_job",
    "run_job",
    "run_name",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    """Where a job runs: its output directory, Hydra job number and command-line overrides."""

    output_dir: Path
    job_num: int | None = None
    overrides: Sequence[str] = ()
    extra_tags: dict[str, str] = field(default_factory=dict)
    on_epoch: Callable[[EpochMetrics], None] | None = None  # the CLI's progress display
    experiment_id: str | None = None  # set when the caller prepared the store (a sweep)
    # why the job's output directory could not be written (Hydra's files): the run fails with it
    output_problem: str | None = None
    # called with each epoch right after it is logged; True stops the job after that epoch (a
    # sweeper pruning a poor trial)
    judge: Callable[[EpochMetrics], bool] | None = None


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended: ``status`` is FINISHED, FAILED or KILLED; ``reason`` says why it did
    not finish, or why a FINISHED job was flagged (it exploded); ``stopped_at``: the epoch
    after which its judge stopped it early, if it did."""

    status: str
    run_id: str | None
    reason: str | None = None
    history: list[EpochMetrics] = field(default_factory=list)
    stopped_at: int | None = None


def array_sha256(array: np.ndarray) -> str:
    """Hex SHA-256 of the array's bytes in C order (dtype and shape are not hashed).

    Logged as the tag ``sl.sha256.<name>`` beside ``params/<name>.npy``, so ``rerun`` compares
    parameters bit for bit without trusting printed floats.
    """
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _log_params(rec: recorder.RunRecorder, result: TrainResult) -> None:
    """θ (or W1, W2) as ``params/<name>.npy``, with their SHA-256 as ``sl.sha256.<name>`` tags."""
    for name, array in result.params.items():
        rec.log_array(name, array)
    rec.set_tags(
        {
            **{f"sl.sha256.{name}": array_sha256(a) for name, a in result.params.items()},
            # the run's own training time (a fused run's share): what compare shows as seconds
            "sl.train_seconds": f"{sum(m.seconds for m in result.history):.4f}",
        },
        defer=True,  # written with the run's last metrics, when it is finished
    )


# overrides that say where things are, not what the run is: left out of run names
_WHERE = ("tracking.", "hydra.", "dataset.path=", "dataset.cache_dir=")


def run_name(cfg: Config, overrides: Sequence[str]) -> str:
    """The overrides that define the run (``optim.lr=0.1 model=mlp``), else a summary."""
    what = [o for o in overrides if not o.startswith(_WHERE)]
    return " ".join(what) or f"{cfg.model.name} lr={cfg.optim.lr} B={cfg.optim.batch_size}"


@dataclass
class OpenJob:
    """A job whose MLflow run is open and whose data is loaded, waiting for its training.

    ``run_job`` trains it alone; the fused launcher trains several side by side. Either way
    each epoch goes through ``log_epoch`` and the job ends with ``close_job``.
    """

    cfg: Config
    ctx: JobContext
    rec: recorder.RunRecorder
    data: Dataset | None = None
    history: list[EpochMetrics] = field(default_factory=list)
    outcome: JobOutcome | None = None  # set once the job has ended

    def log_epoch(self, m: EpochMetrics) -> None:
        """Record one epoch (written in batches; see ``recorder.RunRecorder``)."""
        self.history.append(m)
        with phase("logging"):
            self.rec.log_epoch(m)
        if self.ctx.on_epoch is not None:
            self.ctx.on_epoch(m)

    def kill(self, reason: str = "interrupted") -> None:
        """Close the run as KILLED (Ctrl-C, SIGTERM): never left RUNNING, unless the store
        cannot take the write (then logged, and the outcome says so)."""
        if self.outcome is None:
            reason = self._close("KILLED", reason)
            self.outcome = JobOutcome("KILLED", self.rec.run_id, reason, self.history)

    def fail(self, reason: str) -> JobOutcome:
        """Close the run as FAILED with ``reason`` (unless it ended already); never raises: if
        the store cannot take it, the outcome's reason says the run may remain RUNNING."""
        if self.outcome is None:
            reason = self._close("FAILED", reason)
            self.outcome = JobOutcome("FAILED", self.rec.run_id, reason, self.history)
        return self.outcome

    def _close(self, status: str, reason: str) -> str:
        """Finish the run (unless a finish that failed half-way closed it); the reason to
        report."""
        if self.rec.status is not None:
            return reason
        try:
            self.rec.finish(status, reason=reason)
        except Exception as e:  # e.g. a full store: say so, and let the caller go on
            log.warning("run %s could not be closed as %s: %s", self.rec.run_id, status, e)
            return f"{reason}; the run could not be closed ({e}): it may remain RUNNING"
        return reason


def log_failure(what: str, e: Exception) -> None:
    """A full disk or store, or a user's mistake found only when the job runs (an
    ``InputError``, e.g. ``dataset.val_size`` not smaller than the training set), fails the run
    with its cause, which the caller reports: no traceback for it. Anything else gets its
    traceback in the log."""
    if isinstance(e, (OSError, StoreFullError, InputError)):
        log.debug("%s: %s: %s", what, type(e).__name__, e)
    else:
        log.exception(what)


# where each part of a Dataset lives: (context, features attribute, targets attribute). A
# Dataset without a validation split has no X_val (or None there): no validation input.
_PARTS = (
    ("training", "X_train", "y_train"),
    ("validation", "X_val", "y_val"),
    ("test", "X_test", "y_test"),
)


def data_parts(data: Dataset) -> list[run_inputs.DataPart]:
    """The parts of ``data`` a run logs as inputs: training, validation when the dataset holds
    one (``X_val``/``y_val`` not None), test; shapes and dtypes only."""
    parts = []
    for context, features, targets in _PARTS:
        X, y = getattr(data, features, None), getattr(data, targets, None)
        if X is not None and y is not None:
            parts.append(run_inputs.DataPart(context, X.shape, X.dtype.name, y.shape, y.dtype.name))
    return parts


def _log_inputs(rec: recorder.RunRecorder, data: Dataset) -> None:
    """The data's parts as the run's MLflow dataset inputs, in one store call; the digest is
    the fingerprint (no pass over the arrays)."""
    rec.log_inputs(
        run_inputs.dataset_inputs(data.name, data.fingerprint, data.source, data_parts(data))
    )


def open_job(cfg: Config, ctx: JobContext) -> OpenJob:
    """Validate, open the job's MLflow run, log its config, load its data and log that as the
    run's dataset inputs (``data_parts``: training, validation if any, test).

    A failure after the run exists (e.g. the data cannot be loaded) is recorded: the returned
    job then already has its FAILED ``outcome``.

    Raises
    ------
    ConfigError
        Before anything is created, when the config breaks a rule.
    """
    validate(cfg)
    uri = store.resolve_uri(cfg.tracking.uri)
    experiment_id = ctx.experiment_id or store.prepare_store(uri, cfg.tracking.experiment)
    tags = {
        "sl.role": "job",
        "sl.overrides": " ".join(ctx.overrides),
        **provenance.environment_tags(),
        **ctx.extra_tags,
    }
    if cfg.tracking.sweep_id:
        tags["sl.sweep_id"] = cfg.tracking.sweep_id
    if ctx.job_num is not None:
        tags["sl.hydra_job_num"] = str(ctx.job_num)
    with phase("logging"):
        rec = recorder.RunRecorder.start(
            uri,
            experiment_id,
            run_name=run_name(cfg, ctx.overrides)[:250],
            params=flatten(cfg),
            tags=tags,
            parent_run_id=cfg.tracking.parent_run_id,
        )
    job = OpenJob(cfg, ctx, rec)
    if ctx.output_problem is not None:  # e.g. no space left for Hydra's files of the job
        job.fail(ctx.output_problem)
        return job
    try:
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        with phase("logging"):
            rec.log_text("config.yaml", yaml.safe_dump(asdict(cfg), sort_keys=False))
            rec.log_text("overrides.yaml", yaml.safe_dump(list(ctx.overrides)))
        # data, then the fingerprint and config hash that rerun and resume rely on
        with phase("data"):
            job.data = cfg.dataset.load()
        rec.set_tags(
            {
                "sl.dataset_fingerprint": job.data.fingerprint,
                "sl.config_hash": config_hash(cfg, job.data.fingerprint),
            },
            defer=True,  # with the first epoch's metrics (or the FAILED status)
        )
        with phase("logging"):  # the Dataset column of MLflow's runs table
            _log_inputs(rec, job.data)
    except (KeyboardInterrupt, SystemExit):
        job.kill()
        raise
    except Exception as e:  # recorded on the run; the sweep goes on
        log_failure("job failed before training", e)
        job.fail(f"{type(e).__name__}: {e}")
    return job


# ---------------------------------------------------------------------------------------------
# the run's pictures


def _predict(model: Hypothesis, X: np.ndarray) -> np.ndarray:
    """Arg-max class of every row, in chunks (bounded memory)."""
    return np.concatenate(
        [
            model.forward(X[i : i + EVAL_CHUNK]).argmax(axis=1)
            for i in range(0, X.shape[0], EVAL_CHUNK)
        ]
    )


def _draw_pictures(job: OpenJob, model: Hypothesis, result: TrainResult) -> list[Path]:
    """Draw the run's curves, templates (θ, or W1's first 16 hidden units) and test confusion
    matrix under ``<output_dir>/plots``; return their paths."""
    # imported here, so that Pillow and the fonts load with the first run's pictures (timed as
    # "pictures"), not whenever this module is
    from softmax_lab.pictures.run_pictures import draw_run_pictures

    assert job.data is not None
    if job.cfg.model.name == "softmax":
        templates, file = result.params["theta"], "theta.png"
        titles = [str(c) for c in range(templates.shape[1])]
    else:
        templates, file = result.params["W1"][:, :16], "W1.png"  # the first 16 hidden units
        titles = [f"h{i}" for i in range(templates.shape[1])]
    data = job.data
    cm = result.test_confusion  # measured by the last epoch's evaluation
    if cm is None:  # a result made without it: one more pass over the test set
        cm = confusion_matrix(data.y_test, _predict(model, data.X_test), data.n_classes)
    return draw_run_pictures(
        job.ctx.output_dir / "plots",
        history=[m.as_dict() for m in result.history],
        templates=np.ascontiguousarray(templates),
        template_titles=titles,
        template_file=file,
        confusion=cm,
    )


def _log_pictures(job: OpenJob, model: Hypothesis, result: TrainResult) -> None:
    """Draw the run's pictures and log them under ``plots/``.

    A picture that fails to draw does not fail a trained run: the run is still FINISHED, with
    the problem in its tag ``sl.pictures_error``. One that cannot be written (``OSError``, e.g.
    no space left on device) fails it: the disk is full, and a FINISHED run has its pictures.
    """
    try:
        paths = _draw_pictures(job, model, result)
    except OSError:
        raise
    except Exception as e:  # pictures are a view of the run, not the run
        problem = f"{type(e).__name__}: {e}"
        log.warning("pictures of run %s failed: %s", job.rec.run_id, problem)
        job.rec.set_tags({"sl.pictures_error": problem[:500]}, defer=True)
        return
    for path in paths:
        job.rec.log_file(path, "plots")


def close_job(
    job: OpenJob,
    *,
    model: Hypothesis | None = None,
    result: TrainResult | None = None,
    error: BaseException | None = None,
) -> JobOutcome:
    """Log the trained parameters and pictures and end the run; or record why it failed.

    A trained job that exploded (``detect_explosion``: final train loss above
    ``optim.max_train_loss``, by default ln k) is tagged ``sl.exploded=true`` with the reason in
    ``sl.explosion``, and still ends FINISHED; with ``optim.on_explode=fail`` it ends FAILED with
    that reason (its parameters and pictures logged all the same).

    A job a judge stopped early (``result.stopped_at``) is closed like any trained job, tagged
    ``sl.pruned=true`` and ``sl.stopped_at_epoch``. Stopped where its parameters could not be
    had (``result.params`` empty, no ``model``: a stream that cannot stop one column of its
    stack), it ends FINISHED with those tags and its history only: no θ, pictures or model.
    """
    if job.outcome is not None:
        return job.outcome
    stopped = None if result is None else result.stopped_at
    bare = stopped is not None and result is not None and not result.params and model is None
    if error is not None or (model is None and not bare) or result is None or job.data is None:
        reason = (
            str(error) if isinstance(error, DivergenceError) else f"{type(error).__name__}: {error}"
        )
        return job.fail(reason)
    explosion = detect_explosion(
        result.history, n_classes=job.data.n_classes, max_train_loss=job.cfg.optim.max_train_loss
    )
    flagged = None if explosion is None else str(explosion)
    status = "FAILED" if flagged and job.cfg.optim.on_explode == "fail" else "FINISHED"
    try:
        with phase("logging"):
            if stopped is not None:
                pruned = {"sl.pruned": "true", "sl.stopped_at_epoch": str(stopped)}
                job.rec.set_tags(pruned, defer=True)
            if model is not None:
                _log_params(job.rec, result)
            if flagged is not None:
                job.rec.set_tags({"sl.exploded": "true", "sl.explosion": flagged}, defer=True)
        if model is not None:
            with phase("pictures"):
                _log_pictures(job, model, result)
        with phase("logging"):
            if (
                status == "FINISHED"
                and model is not None
                and models.logs_at_close(job.cfg.tracking)
            ):
                models.log_job_model(job.rec, result.params)  # runs:/<id>/model
            job.rec.finish(status, reason=flagged if status == "FAILED" else None)
    except (KeyboardInterrupt, SystemExit):
        job.kill()
        raise
    except Exception as e:
        log_failure("logging the job's outputs failed", e)
        return job.fail(f"{type(e).__name__}: {e}")
    job.outcome = JobOutcome(status, job.rec.run_id, flagged, job.history, stopped)
    return job.outcome


def run_job(cfg: Config, ctx: JobContext) -> JobOutcome:
    """Train one configuration and record it as one MLflow run.

    Raises
    ------
    ConfigError
        Before anything is created, when the config breaks a rule.
    KeyboardInterrupt
        After closing the run as KILLED.
    """
    job = open_job(cfg, ctx)
    if job.outcome is not None or job.data is None:
        return close_job(job)
    data = job.data
    try:
        with phase("training"):
            model, result = train_alone(cfg, data, on_epoch=job.log_epoch, should_stop=ctx.judge)
    except (KeyboardInterrupt, SystemExit):
        job.kill()
        raise
    except Exception as e:  # a bad job must not take the sweep down: record why, go on
        if not isinstance(e, DivergenceError):
            log_failure("job failed", e)
        return close_job(job, error=e)
    return close_job(job, model=model, result=result)
