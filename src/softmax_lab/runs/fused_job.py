"""Fused jobs end to end: a group of open jobs trained as one stack, each closed as it ends.

``fusion.stacked.train_group`` does the arithmetic; this module connects it to the jobs of
``softmax_lab.runs.job``: each job's epochs go to its own run as they come, and each job is closed
(θ, pictures, FINISHED; or FAILED if its block diverged) as soon as its own epochs are done,
while the longer jobs of the group train on.

A job whose context has a ``judge`` is judged after each of its logged epochs; one judged to
stop is stopped early ("pruned") where that is possible: trained here, or by a lockstep
``fusion.worker.FusedWorker``, its column stops and its run gets the parameters of that epoch.
A stream that cannot stop one column (a Ray task) goes on training it, and its run is closed
at once with its history only (see ``run_fused``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from softmax_lab.config.schema import Config
from softmax_lab.core.training import EpochEnd, EpochMetrics, StackPlan, TrainResult
from softmax_lab.fusion.worker import WorkerStoppedError
from softmax_lab.runs.job import (
    JobContext,
    JobOutcome,
    OpenJob,
    close_job,
    log_failure,
    open_job,
)
from softmax_lab.runs.timings import mark, phase

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["EventStream", "LockstepStream", "run_fused", "run_fused_replay"]

log = logging.getLogger(__name__)


class EventStream(Protocol):
    """A group trained elsewhere, its results streamed back: a forked child
    (``fusion.worker.FusedWorker``) or a Ray task (``hydra/launcher=ray``)."""

    finished_at: float | None  # perf_counter of this machine when the training ended, if known

    def events(
        self, stop: threading.Event | None = None
    ) -> Iterator[tuple[int, EpochMetrics | TrainResult | EpochEnd]]:
        """``(j, EpochMetrics)`` and ``(j, TrainResult)`` of plan job j, each once, in order
        (and ``(-1, EpochEnd)`` after each epoch, from a ``LockstepStream`` in lockstep);
        raises ``KeyboardInterrupt`` once ``stop`` is set, a ``TrainingError`` on failure."""
        ...

    def stop(self) -> None:
        """Stop the training if it still runs."""
        ...


@runtime_checkable
class LockstepStream(EventStream, Protocol):
    """A stream that can stop jobs early: with ``lockstep`` set, it yields ``EpochEnd`` after
    each epoch and waits for ``verdict`` (``fusion.worker.FusedWorker``)."""

    lockstep: bool

    def verdict(self, epoch: int, stop: Collection[int]) -> None:
        """The plan jobs to stop after ``epoch``; the others train on."""
        ...


def run_fused(
    plan: StackPlan,
    jobs: dict[int, OpenJob],
    *,
    stop: threading.Event | None = None,
    worker: EventStream | None = None,
) -> dict[int, JobOutcome]:
    """Train a fused plan once and close the open jobs it serves, each as soon as it ends.

    Parameters
    ----------
    plan : StackPlan
    jobs : dict
        Plan job index → its open job. They share data, batch size, shuffling and seed (the
        first job's are used). Plan jobs without an open job are trained but not recorded (a
        rerun replaying a whole group).
    stop : threading.Event, optional
        Once set, training stops (at the next epoch here; at once in a ``worker``, which is
        killed) as on Ctrl-C, which only reaches the main thread: the jobs still open are
        closed KILLED and ``KeyboardInterrupt`` is raised.
    worker : EventStream, optional
        The plan already training elsewhere (a child process, ``softmax_lab.fusion.worker``,
        or a Ray task): its epochs and results are recorded as they arrive, instead of
        training here.

    Jobs whose context has a ``judge`` are judged after each of their logged epochs, in the
    order the epochs arrive. Trained here, or by a ``LockstepStream`` in lockstep (answered
    with the jobs judged to stop at each ``EpochEnd``), a job judged to stop is stopped after
    that epoch and closed with its parameters then (``TrainResult.stopped_at``). A stream that
    cannot stop a column (the Ray launcher's, or a worker not in lockstep) trains on: such a job
    is closed at once as pruned, FINISHED with its history so far but no parameters, pictures
    or model, and the stream's later events for it are ignored.

    Returns
    -------
    dict
        Plan job index → outcome, for every open job.
    """
    from softmax_lab.fusion.stacked import train_group

    first = next(iter(jobs.values()))
    data, cfg = first.data, first.cfg
    assert data is not None
    outcomes: dict[int, JobOutcome] = {}
    judges = {j: job.ctx.judge for j, job in jobs.items() if job.ctx.judge is not None}
    steer = worker if isinstance(worker, LockstepStream) and worker.lockstep else None
    # the stream cannot stop a column: a judged job's run closes at once, without parameters
    cut_short = worker is not None and steer is None
    judged: dict[int, set[int]] = {}  # epoch → jobs judged to stop after it, not yet stopped

    def on_epoch(j: int, m: EpochMetrics) -> None:
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt("stopped: the sweep was interrupted")
        if j not in jobs or j in outcomes:  # not recorded, or closed as pruned already
            return
        jobs[j].log_epoch(m)
        if j in judges and judges[j](m):
            if cut_short:
                outcomes[j] = close_job(jobs[j], result=_pruned(jobs[j], m.epoch))
            else:
                judged.setdefault(m.epoch, set()).add(j)

    def on_job_end(j: int, r: TrainResult) -> None:
        if j in jobs and j not in outcomes:
            outcomes[j] = _close(jobs[j], r)

    try:
        if worker is not None:
            with phase("training"):  # waiting for the child; recording is timed as such
                for j, event in worker.events(stop):
                    if isinstance(event, EpochMetrics):
                        on_epoch(j, event)
                    elif isinstance(event, EpochEnd):
                        if steer is not None:
                            steer.verdict(event.epoch, judged.pop(event.epoch, set()))
                    else:
                        on_job_end(j, event)
            mark("training_done", latest=True, at=worker.finished_at)
        else:
            with phase("training"):  # closing jobs on the way is timed as logging and pictures
                train_group(
                    data,
                    plan,
                    batch_size=cfg.optim.batch_size,
                    shuffle=cfg.optim.shuffle,
                    seed=cfg.seed,
                    on_epoch=on_epoch,
                    on_job_end=on_job_end,
                    # no judge, no per-epoch call: an unjudged group trains as before
                    judge=(lambda epoch: judged.pop(epoch, set())) if judges else None,
                )
    except (KeyboardInterrupt, SystemExit):
        if worker is not None:
            worker.stop()  # first: its core is free while the runs are closed
        for job in jobs.values():
            job.kill()  # the jobs already closed keep their outcome
        raise
    except WorkerStoppedError as e:  # e.g. SIGTERM to the sweep's process group: killed, not failed
        for j, job in jobs.items():
            job.kill(reason=str(e))
            if job.outcome is not None:
                outcomes.setdefault(j, job.outcome)
    except Exception as e:  # not a diverged job (those fail alone) but the group: all fail
        log_failure("fused training failed", e)
        for j, job in jobs.items():
            outcomes.setdefault(j, close_job(job, error=e))
    finally:
        if worker is not None:
            worker.stop()
    return outcomes


def _pruned(job: OpenJob, epoch: int) -> TrainResult:
    """A job stopped after ``epoch`` whose parameters cannot be had: its history only."""
    return TrainResult({}, list(job.history), None, stopped_at=epoch)


def _close(job: OpenJob, r: TrainResult) -> JobOutcome:
    """Close one job of a group (or a job trained alone elsewhere): its parameters, pictures
    and FINISHED, or FAILED if it diverged."""
    from softmax_lab.core.model import model_from_params

    if r.error is not None or job.data is None:
        return close_job(job, error=r.error)
    return close_job(job, model=model_from_params(r.params), result=r)


def run_fused_replay(cfg: Config, ctx: JobContext, description: str) -> JobOutcome:
    """Rerun one job of a fused group in fused mode, from its ``sl.fused_group`` description.

    The whole group's stack of step sizes is trained again (their runs are not recorded) so
    this job's numbers repeat the original bit for bit; only this job gets a run.
    """
    from softmax_lab.fusion.stacked import replay_plan

    plan, me = replay_plan(description, cfg.optim.epochs)
    job = open_job(cfg, ctx)
    if job.outcome is not None or job.data is None:
        return close_job(job)
    job.rec.set_tags({"sl.fused": "true", "sl.fused_group": f"replay {description}"})
    return run_fused(plan, {me: job})[me]
