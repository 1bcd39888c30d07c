"""One job end to end: data → hypothesis → SGD → MLflow run with metrics, θ and pictures.

Takes a validated ``Config`` dataclass (never a DictConfig) and plain context, so the CLI, the
sweeper, ``rerun`` and a notebook all run jobs the same way. A job never raises for a training
failure: it records the run as FAILED with the reason and returns a ``JobOutcome``, so a sweep
survives one bad job. Ctrl-C / SIGTERM close the run as KILLED and propagate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from softmax_lab import tracking
from softmax_lab.config import Config, config_hash, flatten, validate
from softmax_lab.datasets import Dataset, load_dataset
from softmax_lab.model import build_model
from softmax_lab.trainer import DivergenceError, EpochMetrics, TrainResult, seeded_rngs, train

__all__ = ["JobContext", "JobOutcome", "load_job_data", "run_job", "run_name"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    """Where a job runs: its output directory, Hydra job number and command-line overrides."""

    output_dir: Path
    job_num: int | None = None
    overrides: Sequence[str] = ()
    extra_tags: dict[str, str] = field(default_factory=dict)
    on_epoch: Callable[[EpochMetrics], None] | None = None  # the CLI's progress display


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended: ``status`` is FINISHED, FAILED or SKIPPED (resume)."""

    status: str
    run_id: str | None
    reason: str | None = None
    history: list[EpochMetrics] = field(default_factory=list)


def load_job_data(cfg: Config) -> Dataset:
    """The dataset a config names (memoised per process by ``load_dataset``)."""
    d = cfg.dataset
    return load_dataset(d.name, path=d.path, cache_dir=d.cache_dir, split_seed=d.split_seed)


def _predict(model: Any, X: np.ndarray) -> np.ndarray:
    """Arg-max class of every row, in chunks (bounded memory)."""
    return np.concatenate(
        [model.forward(X[i : i + 8192]).argmax(axis=1) for i in range(0, X.shape[0], 8192)]
    )


def _log_outputs(
    rec: tracking.RunRecorder,
    cfg: Config,
    data: Dataset,
    model: Any,
    result: TrainResult,
    out_dir: Path,
) -> None:
    """θ (or W1, W2) as .npy, and the pictures."""
    from softmax_lab import plots  # matplotlib only when a run has finished

    for name, array in result.params.items():
        rec.log_array(name, array)
    plot_dir = out_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    history = [m.as_dict() for m in result.history]
    files = [plots.plot_curves(history, plot_dir / "curves.png")]
    if cfg.model.name == "softmax":
        theta = result.params["theta"]
        titles = [str(c) for c in range(theta.shape[1])]
        files.append(plots.plot_templates(theta, plot_dir / "theta.png", titles=titles))
    else:
        W1 = result.params["W1"][:, :16]  # the first 16 hidden units' input weights
        titles = [f"h{i}" for i in range(W1.shape[1])]
        files.append(plots.plot_templates(W1, plot_dir / "W1.png", titles=titles, ncols=8))
    cm = plots.confusion_matrix(data.y_test, _predict(model, data.X_test), data.n_classes)
    files.append(plots.plot_confusion(cm, plot_dir / "confusion.png"))
    for f in files:
        rec.log_file(f, "plots")


# overrides that say where things are, not what the run is: left out of run names
_WHERE = ("tracking.", "hydra.", "dataset.path=", "dataset.cache_dir=")


def run_name(cfg: Config, overrides: Sequence[str]) -> str:
    """The overrides that define the run (``optim.lr=0.1 model=mlp``), else a summary."""
    what = [o for o in overrides if not o.startswith(_WHERE)]
    return " ".join(what) or f"{cfg.model.name} lr={cfg.optim.lr} B={cfg.optim.batch_size}"


def run_job(cfg: Config, ctx: JobContext) -> JobOutcome:
    """Train one configuration and record it as one MLflow run.

    Raises
    ------
    ConfigError
        Before anything is created, when the config breaks a rule.
    KeyboardInterrupt
        After closing the run as KILLED.
    """
    validate(cfg)
    uri = tracking.resolve_uri(cfg.tracking.uri)
    experiment_id = tracking.prepare_store(uri, cfg.tracking.experiment)
    tags = {
        "sl.role": "job",
        "sl.overrides": " ".join(ctx.overrides),
        **tracking.environment_tags(),
        **ctx.extra_tags,
    }
    if cfg.tracking.sweep_id:
        tags["sl.sweep_id"] = cfg.tracking.sweep_id
    if ctx.job_num is not None:
        tags["sl.hydra_job_num"] = str(ctx.job_num)
    name = run_name(cfg, ctx.overrides)
    rec = tracking.RunRecorder.start(
        uri,
        experiment_id,
        run_name=name[:250],
        params=flatten(cfg),
        tags=tags,
        parent_run_id=cfg.tracking.parent_run_id,
    )
    history: list[EpochMetrics] = []
    try:
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        rec.log_text("config.yaml", yaml.safe_dump(asdict(cfg), sort_keys=False))
        rec.log_text("overrides.yaml", yaml.safe_dump(list(ctx.overrides)))
        # data, then the fingerprint and config hash that rerun and resume rely on
        data = load_job_data(cfg)
        rec.set_tags(
            {
                "sl.dataset_fingerprint": data.fingerprint,
                "sl.config_hash": config_hash(cfg, data.fingerprint),
            }
        )
        init_rng, shuffle_rng = seeded_rngs(cfg.seed)
        model = build_model(
            cfg.model.name,
            n_features=data.n_features,
            n_classes=data.n_classes,
            hidden_dim=cfg.model.hidden_dim,
            rng=init_rng,
        )

        def on_epoch(m: EpochMetrics) -> None:
            history.append(m)
            rec.log_epoch(m)  # one batch per epoch: what was trained is on disk
            if ctx.on_epoch is not None:
                ctx.on_epoch(m)

        result = train(
            model,
            data.X_train,
            data.y_train,
            data.X_test,
            data.y_test,
            lr=cfg.optim.lr,
            batch_size=cfg.optim.batch_size,
            epochs=cfg.optim.epochs,
            shuffle=cfg.optim.shuffle,
            rng=shuffle_rng,
            on_epoch=on_epoch,
        )
        _log_outputs(rec, cfg, data, model, result, ctx.output_dir)
    except DivergenceError as e:
        rec.finish("FAILED", reason=str(e))
        return JobOutcome("FAILED", rec.run_id, str(e), history)
    except (KeyboardInterrupt, SystemExit):
        rec.finish("KILLED", reason="interrupted")
        raise
    except Exception as e:  # a bad job must not take the sweep down: record why, go on
        reason = f"{type(e).__name__}: {e}"
        log.exception("job failed")
        rec.finish("FAILED", reason=reason)
        return JobOutcome("FAILED", rec.run_id, reason, history)
    rec.finish("FINISHED")
    return JobOutcome("FINISHED", rec.run_id, None, history)
