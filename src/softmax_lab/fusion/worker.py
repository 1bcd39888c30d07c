"""A fused group trained in a child process, its results streamed back as they come.

The parent process of a sweep has a lot to do besides arithmetic: importing MLflow and opening
its store (≈ 2 s of Python before the first run can exist), then writing every job's metrics,
parameters and pictures. Trained in threads of that process, the groups' per-step Python fights
that work for the GIL; trained in forked children, they use the cores while the parent imports
and logs, and no two groups share a GIL.

``FusedWorker(...)`` forks at once (the child shares the parent's float32 data copy-on-write and
only reads it) and runs ``fusion.stacked.train_group`` there, with one BLAS thread, exactly
as the parent would: the numbers are bit for bit those of training in-process. ``events()``
yields each job's epochs and final result in the order the child produced them.

With ``lockstep=True`` the parent can stop jobs early (a sweeper pruning trials): after each
epoch the child sends ``EpochEnd(epoch)`` and waits for the parent's ``verdict`` (which plan
jobs stop now) before it trains the next epoch; it stops them through ``train_stack``'s judge,
so the numbers are still those of training in-process with the same judge.

The child runs ``NICENESS`` steps below the parent's priority (recording comes first), ignores
Ctrl-C (the parent decides what an interrupt stops), is killed when the parent dies
(``PR_SET_PDEATHSIG`` on Linux, and a parent check every epoch, and every ``POLL_SECONDS``
while it waits for a verdict, elsewhere), and leaves through
``os._exit`` (no atexit handlers of the parent's libraries run twice).
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import multiprocessing.queues as mpq
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from softmax_lab.core.training import (
    DivergenceError,
    EpochEnd,
    EpochMetrics,
    StackPlan,
    TrainResult,
)
from softmax_lab.errors import TrainingError

if TYPE_CHECKING:
    from softmax_lab.data.dataset import Dataset

__all__ = ["STOP_SIGNALS", "FusedWorker", "WorkerError", "WorkerStoppedError"]

POLL_SECONDS = 0.2  # how often a waiting parent looks at its stop flag and the child's health
# signals that stop a process on request: a child ended by one was stopped, not failed
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
# The children train at a lower priority than the sweep process, so recording never falls
# behind: at the same priority three children starve the parent's MLflow import (store ready
# at 5.6 s instead of 2.8 s) and its runs close 1.5 s after training ends. Measured (27-job
# benchmark, 2 cores): niceness 0 → 7.8 s, 5 → 7.0 s, 10 → 7.4 s.
NICENESS = 5
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class WorkerError(TrainingError):
    """The training process of a fused group failed or died before finishing."""


class WorkerStoppedError(WorkerError):
    """The training process was stopped by a signal that asks a process to stop (SIGTERM,
    SIGINT, SIGHUP): its jobs were killed, not failed."""


@dataclass(frozen=True)
class _Ended:
    """A job's final result as sent by the child (exceptions travel as plain fields)."""

    params: dict[str, Any]
    history: list[EpochMetrics]
    confusion: Any
    diverged: tuple[int, float, float] | None  # (epoch, lr, loss) of a divergence
    stopped_at: int | None = None  # the epoch after which the parent's verdict stopped it


class FusedWorker:
    """Train one fused group in a forked child process.

    Parameters
    ----------
    data : Dataset
        Its float32 arrays are shared with the child, not copied.
    plan : StackPlan
    batch_size, shuffle, seed :
        The group's shared optimiser settings (shuffling draws from ``seed``'s generator).
    name : str
        The child's process name (in error messages).
    lockstep : bool
        After each epoch the child sends ``EpochEnd`` (``events`` yields it) and waits for
        ``verdict`` before it goes on: the caller must answer every ``EpochEnd``.

    Must be created on the main thread: the child's parent-death signal follows the thread
    that forked it.
    """

    def __init__(
        self,
        data: Dataset,
        plan: StackPlan,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        name: str = "fused-worker",
        lockstep: bool = False,
    ) -> None:
        ctx = mp.get_context("fork")
        self.plan = plan
        self.name = name
        self.lockstep = lockstep
        self._queue: mpq.Queue[tuple[str, int, Any]] = ctx.Queue()
        # the parent's verdicts, (epoch, jobs to stop), in lockstep mode only
        self._verdicts: mpq.Queue[tuple[int, tuple[int, ...]]] | None = (
            ctx.Queue() if lockstep else None
        )
        self._process = ctx.Process(
            target=_child,
            args=(
                self._queue,
                self._verdicts,
                data,
                plan,
                batch_size,
                shuffle,
                seed,
                os.getpid(),
            ),
            name=name,
            daemon=True,  # never outlives an interpreter that exits without stopping it
        )
        self.finished_at: float | None = None  # perf_counter when the child's training ended
        # Ctrl-C and SIGTERM wait until the child has its own handlers (it unblocks them), and
        # in this process until the child is ours to stop
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            self._process.start()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            raise
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a pending signal acts now
        except BaseException:
            self.stop()
            raise

    def events(
        self, stop: threading.Event | None = None
    ) -> Iterator[tuple[int, EpochMetrics | TrainResult | EpochEnd]]:
        """``(j, EpochMetrics)`` after each of job j's epochs, ``(j, TrainResult)`` when
        job j has ended, in the child's order, until the group is done; in lockstep mode also
        ``(-1, EpochEnd(epoch))`` after each epoch's events, which ``verdict`` must answer.

        Raises
        ------
        KeyboardInterrupt
            When ``stop`` is set (the child is stopped first).
        WorkerStoppedError
            When the child was stopped by SIGTERM, SIGINT or SIGHUP (someone stopped the
            sweep, e.g. its whole process group): its jobs were killed, not failed.
        WorkerError
            When the child failed (its traceback is in the message) or died otherwise (SIGKILL,
            as the kernel's out-of-memory killer sends, included).
        """
        while True:
            if stop is not None and stop.is_set():
                self.stop()
                raise KeyboardInterrupt("stopped: the sweep was interrupted")
            try:
                kind, j, payload = self._queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not self._process.is_alive():
                    self._process.join()
                    code = self._process.exitcode or 0
                    if -code in STOP_SIGNALS:  # e.g. SIGTERM to the sweep's process group
                        raise WorkerStoppedError(
                            f"{self.name}: the training process was stopped by "
                            f"{signal.Signals(-code).name} (exit code {code}) before its group "
                            "was done"
                        ) from None
                    raise WorkerError(
                        f"{self.name}: the training process died "
                        f"(exit code {self._process.exitcode}) before its group was done"
                    ) from None
                continue
            if kind == "epoch":
                yield j, payload
            elif kind == "epoch_end":
                yield -1, EpochEnd(payload)
            elif kind == "end":
                yield j, _result(payload)
            elif kind == "crash":
                self._process.join()
                raise WorkerError(f"{self.name}: training failed in the child:\n{payload}")
            else:  # "done", with the child's perf_counter (one clock for the whole machine)
                self.finished_at = payload
                self._process.join()
                return

    def verdict(self, epoch: int, stop: Collection[int]) -> None:
        """Answer ``EpochEnd(epoch)``: the plan jobs ``stop`` end after that epoch (jobs that
        ended already are ignored), the others train on.

        Raises
        ------
        ValueError
            When the worker was not started in lockstep mode.
        """
        if self._verdicts is None:
            raise ValueError(f"{self.name}: a verdict needs FusedWorker(..., lockstep=True)")
        self._verdicts.put((epoch, tuple(sorted(stop))))

    def stop(self) -> None:
        """Kill the child if it still runs, and reap it."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._queue.close()
        if self._verdicts is not None:
            self._verdicts.close()


def _result(ended: _Ended) -> TrainResult:
    error = None
    if ended.diverged is not None:
        epoch, lr, loss = ended.diverged
        error = DivergenceError(epoch=epoch, lr=lr, loss=loss, history=ended.history)
    return TrainResult(ended.params, ended.history, ended.confusion, error, ended.stopped_at)


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this child when its parent dies (Linux); else check now."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the parent check in each epoch remains
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)


def _await_verdict(
    out: mpq.Queue[tuple[str, int, Any]],
    verdicts: mpq.Queue[tuple[int, tuple[int, ...]]],
    parent_pid: int,
) -> Callable[[int], Collection[int]]:
    """``train_stack``'s judge in lockstep mode: send the epoch's end, wait for the parent's
    verdict on it; polling, so that a child whose parent died leaves instead of waiting."""

    def judge(epoch: int) -> Collection[int]:
        out.put(("epoch_end", -1, epoch))
        while True:
            try:
                answered, stop = verdicts.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if os.getppid() != parent_pid:
                    os._exit(1)
                continue
            if answered != epoch:  # the parent answers each epoch once, in order
                raise RuntimeError(f"verdict for epoch {answered} while at epoch {epoch}")
            return stop

    return judge


def _child(
    out: mpq.Queue[tuple[str, int, Any]],
    verdicts: mpq.Queue[tuple[int, tuple[int, ...]]] | None,
    data: Dataset,
    plan: StackPlan,
    batch_size: int,
    shuffle: bool,
    seed: int,
    parent_pid: int,
) -> None:
    from threadpoolctl import threadpool_limits

    from softmax_lab.fusion.stacked import train_group

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the CLI's handler, inherited by fork
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked by the parent to fork
    _die_with_parent(parent_pid)
    os.nice(NICENESS)

    def on_epoch(j: int, m: EpochMetrics) -> None:
        if os.getppid() != parent_pid:
            os._exit(1)
        out.put(("epoch", j, m))

    def on_job_end(j: int, r: TrainResult) -> None:
        diverged = None if r.error is None else (r.error.epoch, r.error.lr, r.error.loss)
        ended = _Ended(r.params, r.history, r.test_confusion, diverged, r.stopped_at)
        out.put(("end", j, ended))

    try:
        with threadpool_limits(limits=1, user_api="blas"):
            train_group(
                data,
                plan,
                batch_size=batch_size,
                shuffle=shuffle,
                seed=seed,
                on_epoch=on_epoch,
                on_job_end=on_job_end,
                judge=None if verdicts is None else _await_verdict(out, verdicts, parent_pid),
            )
    except BaseException:  # everything goes back to the parent, which decides
        out.put(("crash", -1, traceback.format_exc()))
    else:
        out.put(("done", -1, time.perf_counter()))
    out.close()
    out.join_thread()  # everything sent before the child exits
