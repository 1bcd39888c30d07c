"""A run's pictures (curves, θ or W1 templates, confusion matrix): rendered, logged, and the
run closed — inline for a single run, or in a background process during a sweep.

Rendering with matplotlib costs about as much as training a small job, so a sweep hands it to
one worker process: while the worker draws job i's pictures, the main process trains the next
jobs on the other core. A run the worker has not closed yet stays RUNNING until its pictures
are logged, so a FINISHED run always has all its artifacts.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["PictureJob", "PictureWorker", "finish_with_pictures", "render", "single_blas_thread"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PictureJob:
    """Everything needed to draw a finished run's pictures and close the run; picklable."""

    uri: str
    run_id: str
    plot_dir: Path
    history: list[dict[str, float]]
    templates: NDArray[np.float32]  # θ (n, k), or W1's first 16 columns (n, 16)
    template_titles: list[str]
    template_file: str  # "theta.png" or "W1.png"
    confusion: NDArray[np.int64]  # (k, k)


def render(job: PictureJob) -> list[Path]:
    """Draw the three PNGs into ``job.plot_dir``; return their paths."""
    from softmax_lab import plots  # matplotlib only where pictures are drawn

    job.plot_dir.mkdir(parents=True, exist_ok=True)
    ncols = 5 if job.templates.shape[1] <= 10 else 8
    return [
        plots.plot_curves(job.history, job.plot_dir / "curves.png"),
        plots.plot_templates(
            job.templates,
            job.plot_dir / job.template_file,
            titles=job.template_titles,
            ncols=ncols,
        ),
        plots.plot_confusion(job.confusion, job.plot_dir / "confusion.png"),
    ]


def finish_with_pictures(job: PictureJob) -> str | None:
    """Render, log under ``plots/`` and close the run FINISHED; return a problem, if any.

    A picture that fails to render does not fail a trained run: the run is still FINISHED,
    with the problem in its tag ``sl.pictures_error``.
    """
    from softmax_lab import tracking

    problem = None
    try:
        tracking.log_files(job.uri, job.run_id, render(job), "plots")
    except Exception as e:  # pictures are a view of the run, not the run
        problem = f"{type(e).__name__}: {e}"
        log.warning("pictures of run %s failed: %s", job.run_id, problem)
        tracking.set_run_tags(job.uri, job.run_id, {"sl.pictures_error": problem[:500]})
    tracking.finish_run(job.uri, job.run_id, "FINISHED")
    return problem


def single_blas_thread() -> None:
    """Limit BLAS to one thread in this process (for the rest of its life).

    A sweep trains on one core while its picture worker draws on the other: OpenBLAS's default
    two spinning threads per process would oversubscribe the two cores and slow training down
    (measured: 8.5–11 s of fused training with two threads, 6.4 s with one, for the 27-job grid).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class PictureWorker:
    """One background process drawing pictures and closing runs, in submission order."""

    def __init__(self) -> None:
        # spawn, not fork: the parent holds SQLite connections and BLAS threads
        self._pool = ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"), initializer=single_blas_thread
        )
        self._pending: dict[str, tuple[str, Future[str | None]]] = {}

    def submit(self, job: PictureJob) -> None:
        self._pending[job.run_id] = (job.uri, self._pool.submit(finish_with_pictures, job))

    def drain(self) -> list[str]:
        """Wait for every submitted run to be closed; return the problems seen."""
        problems = []
        for run_id, (uri, future) in list(self._pending.items()):
            try:
                problem = future.result()
            except Exception as e:  # the worker died: close the run from here, without pictures
                problem = f"{type(e).__name__}: {e}"
                _close_without_pictures(uri, run_id, problem, "FINISHED")
            if problem:
                problems.append(f"run {run_id}: {problem}")
            del self._pending[run_id]
        self._pool.shutdown()
        return problems

    def abort(self) -> None:
        """Interrupted: stop the worker, close every run still waiting as KILLED."""
        for proc in list(getattr(self._pool, "_processes", {}).values()):
            proc.terminate()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for run_id, (uri, future) in self._pending.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                continue  # the worker closed this run before it was stopped
            _close_without_pictures(uri, run_id, "interrupted before its pictures", "KILLED")
        self._pending.clear()

    def __enter__(self) -> PictureWorker:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.drain()
        else:
            self.abort()


def _close_without_pictures(uri: str, run_id: str, reason: str, status: str) -> None:
    from softmax_lab import tracking

    try:
        tracking.set_run_tags(uri, run_id, {"sl.pictures_error": reason[:500]})
        tracking.finish_run(uri, run_id, status, reason if status != "FINISHED" else None)
    except Exception:  # the store itself is gone: nothing more can be recorded
        log.exception("could not close run %s", run_id)
