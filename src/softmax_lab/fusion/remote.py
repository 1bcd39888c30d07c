"""A unit of a sweep's training run on another machine: the body of a Ray task.

A unit is what one task trains: a fused group (its jobs' plan, ``fusion.stacked.train_group``)
or a job that runs alone (any model, ``core.training.train``). ``train_unit`` is a generator:
run as a Ray streaming-generator task (``hydra/launcher=ray``, ``softmax_lab.cli.ray_launcher``
wraps it in ``ray.remote``), every value it yields reaches the sweep process as soon as it is
yielded, so each epoch is recorded there while the next one trains.

It yields, in order: one ``Placement`` (which node, process and task trains the unit), then
``(j, EpochMetrics)`` after each epoch of plan job j and ``(j, TrainResult)`` when job j has
ended, in the order of training; or, instead of the training, one ``UnitFailed`` (the data
could not be loaded on that node, or is not the sweep's: its fingerprint differs). The data
are loaded on the node by the job's config, through the project's verified cache (a node
without the files downloads and verifies them; ``dataset.path`` must name a directory every
node can read), and the numbers are bit for bit those of the same unit trained in the sweep's
own machine with one BLAS thread.

Ray is imported only inside ``train_unit`` (to ask where it runs): importing this module costs
nothing, and only a sweep that uses the Ray launcher needs Ray.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from softmax_lab.config.schema import Config
from softmax_lab.core.model import Hypothesis, build_model
from softmax_lab.core.training import (
    DivergenceError,
    EpochMetrics,
    StackPlan,
    TrainResult,
    seeded_rngs,
    train,
)
from softmax_lab.errors import TrainingError

if TYPE_CHECKING:
    from softmax_lab.data.dataset import Dataset

__all__ = [
    "FingerprintMismatchError",
    "Placement",
    "TrainingUnit",
    "UnitFailed",
    "package_version",
    "train_alone",
    "train_unit",
]


class FingerprintMismatchError(TrainingError):
    """The data a node loaded for a unit are not the data the sweep computed its runs' config
    hashes from: its jobs fail, naming both fingerprints and the node."""


@dataclass(frozen=True)
class TrainingUnit:
    """What one task trains.

    ``configs`` are the unit's jobs in plan order (one job for a unit that runs alone), all
    validated; ``plan`` is the fused group's plan, None for a job alone; ``fingerprint`` is
    the dataset fingerprint the sweep process computed for them.
    """

    configs: tuple[Config, ...]
    plan: StackPlan | None
    fingerprint: str
    version: str  # the sweep's softmax-lab version, compared with the node's


@dataclass(frozen=True)
class Placement:
    """Where a unit trains: the Ray node (its id and IP), the host, the process and the task."""

    node_id: str
    node_ip: str
    host: str
    pid: int
    task_id: str

    def describe(self) -> str:
        return f"node {self.node_ip} ({self.host}, Ray node {self.node_id[:12]}), pid {self.pid}"


@dataclass(frozen=True)
class UnitFailed:
    """The unit could not train on its node; ``mismatch``: because its data differ."""

    reason: str
    mismatch: bool = False


def package_version() -> str:
    """This softmax-lab's version (``unknown`` if it is not installed as a distribution)."""
    try:
        return metadata.version("softmax-lab")
    except metadata.PackageNotFoundError:
        return "unknown"


def train_unit(unit: TrainingUnit) -> Iterator[Any]:
    """Train ``unit`` here, yielding where, then each epoch and each job's end (see above).

    Meant to run as a Ray task; run in a process without Ray (a test), its placement names
    this process with an empty node and task id.
    """
    yield _placement()
    first = unit.configs[0]
    mine = package_version()
    if mine != unit.version:
        yield UnitFailed(
            f"{socket.gethostname()} runs softmax-lab {mine}, the sweep {unit.version}: "
            "install the sweep's version on every node (or give it as "
            "hydra.launcher.runtime_env)"
        )
        return
    try:
        data = first.dataset.load()
    except Exception as e:  # e.g. no copy of the files on this node and no download
        yield UnitFailed(f"{type(e).__name__} on {socket.gethostname()}: {e}")
        return
    if data.fingerprint != unit.fingerprint:
        yield UnitFailed(
            f"dataset fingerprint {data.fingerprint[:16]}… on {_placement().describe()} "
            f"(loaded from {data.source}) differs from the sweep's {unit.fingerprint[:16]}…: "
            "that node's copy of the data is not the sweep's",
            mismatch=True,
        )
        return
    # the training runs in a thread of this task and hands each event over; the generator
    # yields them as they come (a callback cannot yield)
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def work() -> None:
        from threadpoolctl import threadpool_limits

        try:
            with threadpool_limits(limits=1, user_api="blas"):  # as the local launchers train
                _train(unit, data, events)
        except BaseException as e:  # everything goes back to the sweep, which decides
            events.put(("crash", e))
        else:
            events.put(("done", None))

    thread = threading.Thread(target=work, name="unit-training", daemon=True)
    thread.start()
    while True:
        kind, payload = events.get()
        if kind == "event":
            yield payload
        elif kind == "crash":
            thread.join()
            raise payload
        else:
            thread.join()
            return


def _train(unit: TrainingUnit, data: Dataset, events: queue.Queue[tuple[str, Any]]) -> None:
    """Train the unit on ``data``, putting each epoch and job end on ``events``."""
    from softmax_lab.fusion.stacked import train_group

    first = unit.configs[0]

    def on_epoch(j: int, m: EpochMetrics) -> None:
        events.put(("event", (j, m)))

    def on_job_end(j: int, r: TrainResult) -> None:
        events.put(("event", (j, r)))

    if unit.plan is not None:
        train_group(
            data,
            unit.plan,
            batch_size=first.optim.batch_size,
            shuffle=first.optim.shuffle,
            seed=first.seed,
            on_epoch=on_epoch,
            on_job_end=on_job_end,
        )
        return
    try:
        result = train_alone(first, data, on_epoch=lambda m: on_epoch(0, m))[1]
    except DivergenceError as e:
        result = TrainResult({}, e.history, None, e)
    on_job_end(0, result)


def train_alone(
    cfg: Config,
    data: Dataset,
    *,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    should_stop: Callable[[EpochMetrics], bool] | None = None,
) -> tuple[Hypothesis, TrainResult]:
    """Train one job alone from its seed: its model (built from ``cfg.seed``'s init generator)
    and its result. How ``runs.job.run_job`` trains a job, and a Ray task a job that runs alone.

    ``on_epoch`` and ``should_stop`` (stop early after an epoch) are those of
    ``core.training.train``.

    Raises
    ------
    DivergenceError
        When a loss or parameter becomes non-finite (``on_epoch`` saw every finite epoch).
    """
    init_rng, shuffle_rng = seeded_rngs(cfg.seed)
    model = build_model(
        cfg.model.name,
        n_features=data.n_features,
        n_classes=data.n_classes,
        hidden_dim=cfg.model.hidden_dim,
        rng=init_rng,
    )
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
        X_val=data.X_val,
        y_val=data.y_val,
        on_epoch=on_epoch,
        should_stop=should_stop,
    )
    return model, result


def _placement() -> Placement:
    """Where this process runs, as Ray sees it (empty ids outside a Ray worker)."""
    node_id = task_id = ""
    node_ip = "127.0.0.1"
    try:
        import ray

        if ray.is_initialized():
            ctx = ray.get_runtime_context()
            node_id, task_id = ctx.get_node_id(), ctx.get_task_id() or ""
            node_ip = ray.util.get_node_ip_address()
    except ImportError:  # not in a Ray worker
        pass
    return Placement(node_id, node_ip, socket.gethostname(), os.getpid(), task_id)
