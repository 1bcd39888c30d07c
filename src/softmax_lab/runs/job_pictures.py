"""A job's pictures: what they need from the trained run, drawn and logged under ``plots/``.

The glue between ``softmax_lab.runs.job`` (whose ``close_job`` calls ``log_pictures``) and
``softmax_lab.pictures.run_pictures``, which draws from plain arrays.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from softmax_lab.core.loss import confusion_matrix
from softmax_lab.core.training import EVAL_CHUNK, TrainResult
from softmax_lab.pictures.run_pictures import PictureJob, render

if TYPE_CHECKING:
    from softmax_lab.runs.job import OpenJob

__all__ = ["log_pictures"]

log = logging.getLogger(__name__)


def _predict(model: Any, X: np.ndarray) -> np.ndarray:
    """Arg-max class of every row, in chunks (bounded memory)."""
    return np.concatenate(
        [
            model.forward(X[i : i + EVAL_CHUNK]).argmax(axis=1)
            for i in range(0, X.shape[0], EVAL_CHUNK)
        ]
    )


def _picture_job(job: OpenJob, model: Any, result: TrainResult) -> PictureJob:
    """What the run's pictures need: history, templates and the test confusion matrix."""
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
    return PictureJob(
        plot_dir=job.ctx.output_dir / "plots",
        history=[m.as_dict() for m in result.history],
        templates=np.ascontiguousarray(templates),
        template_titles=titles,
        template_file=file,
        confusion=cm,
    )


def log_pictures(job: OpenJob, model: Any, result: TrainResult) -> None:
    """Draw the run's pictures and log them under ``plots/``.

    A picture that fails to draw does not fail a trained run: the run is still FINISHED, with
    the problem in its tag ``sl.pictures_error``.
    """
    try:
        paths = render(_picture_job(job, model, result))
    except Exception as e:  # pictures are a view of the run, not the run
        problem = f"{type(e).__name__}: {e}"
        log.warning("pictures of run %s failed: %s", job.rec.run_id, problem)
        job.rec.set_tags({"sl.pictures_error": problem[:500]}, defer=True)
        return
    for path in paths:
        job.rec.log_file(path, "plots")
