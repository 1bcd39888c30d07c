"""Copying an experiment's runs from one store to another (``push_experiment``), idempotently.

What one person ran alone (a SQLite store) goes to the team store (an MLflow server) with all a
run holds: params, every metric point (value, step, timestamp), tags, artifacts, status, start
and end times, and the parent/child links of sweeps (``mlflow.parentRunId`` names the parent's
new id). A copy is tagged ``sl.pushed_from = <source store>#<source run id>``; a run whose tag is
in the target already is skipped, so pushing twice copies nothing new. The tag is set last: a
copy cut short (the push died) carries only ``sl.pushing_from`` and is deleted and made again
by the next push. A run still RUNNING in the source is not copied (its record is not complete),
nor are the jobs of a sweep whose parent run is still RUNNING (their link would dangle).

Logged models (MLflow 3's ``LoggedModel``, outside the run's artifacts) are not copied: the
target makes a run's model again from its ``params/*.npy`` when it is registered or predicted
with (``models.ensure_model``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.exceptions import MlflowException

from softmax_lab.errors import TrackingError
from softmax_lab.tracking.reading import PAGE_SIZE, experiment_id_of, reader_for
from softmax_lab.tracking.recorder import batches
from softmax_lab.tracking.store import check_usable, normalize_uri, prepare_store, retry_locked

__all__ = ["PUSHED_FROM", "PUSHING_FROM", "PushResult", "push_experiment"]

PUSHED_FROM = "sl.pushed_from"  # "<source store>#<source run id>" on a finished copy
PUSHING_FROM = "sl.pushing_from"  # the same, while the copy is being made (removed at its end)
PARENT = "mlflow.parentRunId"
METRIC_BATCH = 1000  # MLflow takes at most 1000 metrics per log_batch call


@dataclass
class PushResult:
    """What a push did: source run id → copy id for the runs it copied, and the runs it did not.

    ``skipped`` were in the target already (their copy id in ``existing``); ``running`` are
    RUNNING in the source, or jobs of a sweep whose parent run is.
    """

    experiment: str
    source: str
    target: str
    copied: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    existing: dict[str, str] = field(default_factory=dict)
    running: list[str] = field(default_factory=list)
    redone: list[str] = field(default_factory=list)  # copies cut short before, deleted

    def copy_of(self, source_run_id: str) -> str | None:
        """The target's id of a source run, copied now or before."""
        return self.copied.get(source_run_id) or self.existing.get(source_run_id)


def _all_runs(client: MlflowClient, experiment_id: str) -> list[Run]:
    runs: list[Run] = []
    token: str | None = None
    while True:
        page = client.search_runs([experiment_id], max_results=PAGE_SIZE, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _parents_first(runs: Sequence[Run]) -> list[Run]:
    """``runs`` ordered so a run's parent (if among them) comes before it, oldest first."""
    by_id = {r.info.run_id: r for r in runs}
    done: set[str] = set()
    ordered: list[Run] = []

    def visit(run: Run, seen: frozenset[str] = frozenset()) -> None:
        run_id = run.info.run_id
        if run_id in done or run_id in seen:  # seen: a cycle of parent tags, ignored
            return
        parent = by_id.get(run.data.tags.get(PARENT, ""))
        if parent is not None:
            visit(parent, seen | {run_id})
        done.add(run_id)
        ordered.append(run)

    for run in sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id)):
        visit(run)
    return ordered


def _copy_run(
    source: MlflowClient,
    target: MlflowClient,
    run: Run,
    experiment_id: str,
    *,
    mark: str,
    parent: str | None,
) -> str:
    """Copy ``run`` into ``experiment_id`` of ``target``; return the copy's id."""
    info = run.info
    tags = {k: v for k, v in run.data.tags.items() if k not in (PARENT, PUSHED_FROM, PUSHING_FROM)}
    tags[PUSHING_FROM] = mark
    if parent is not None:
        tags[PARENT] = parent
    copy = retry_locked(
        f"copy run {info.run_id}",
        lambda: target.create_run(
            experiment_id, start_time=info.start_time, tags=tags, run_name=info.run_name
        ),
    )
    new_id = str(copy.info.run_id)

    def write(
        metrics: Sequence[Metric] = (), params: Sequence[Param] = (), tags: Sequence[RunTag] = ()
    ) -> None:
        retry_locked(
            f"copy run {info.run_id}",
            lambda: target.log_batch(
                new_id, list(metrics), list(params), list(tags), synchronous=True
            ),
        )

    for chunk_p in batches([Param(k, v) for k, v in run.data.params.items()]):
        write(params=chunk_p)
    points = [
        p for key in sorted(run.data.metrics) for p in source.get_metric_history(info.run_id, key)
    ]
    for chunk_m in batches(
        [Metric(p.key, p.value, p.timestamp, p.step) for p in points], METRIC_BATCH
    ):
        write(metrics=chunk_m)
    if source.list_artifacts(info.run_id):
        with tempfile.TemporaryDirectory(prefix="softmax-lab-push-") as tmp:
            local = source.download_artifacts(info.run_id, "", tmp)
            target.log_artifacts(new_id, local)
    retry_locked(
        f"copy run {info.run_id}",
        lambda: target.set_terminated(new_id, info.status, end_time=info.end_time),
    )
    # last: only a complete copy carries the tag that makes the next push skip it
    write(tags=[RunTag(PUSHED_FROM, mark)])
    retry_locked(f"copy run {info.run_id}", lambda: target.delete_tag(new_id, PUSHING_FROM))
    return new_id


def _delete(client: MlflowClient, run_id: str) -> None:
    retry_locked(f"delete partial copy {run_id}", lambda: client.delete_run(run_id))


def push_experiment(
    source_uri: str | None,
    target_uri: str,
    experiment: str,
    *,
    on_run: Callable[[str, str], None] | None = None,
) -> PushResult:
    """Copy the runs of ``experiment`` in ``source_uri`` into the experiment of the same name in
    ``target_uri`` (made if missing), skipping the runs copied there before.

    Parameters
    ----------
    source_uri : str or None
        The store to copy from; None: ``$MLFLOW_TRACKING_URI`` or the default SQLite store.
    target_uri : str
        The store to copy to, e.g. a team store ``http://host:5000``.
    experiment : str
        The experiment's name in both stores.
    on_run : callable, optional
        Called with ``(source run id, copy id)`` after each run is copied.

    Raises
    ------
    TrackingError
        Either store cannot be used (``check_usable``), the source has no such experiment, the
        two URIs name the same store, or the server refuses the user (403).
    """
    source_uri, source = reader_for(source_uri)
    target_uri = normalize_uri(target_uri)
    if target_uri == source_uri:
        raise TrackingError(f"--to {target_uri} is the store the runs are in; name another store")
    check_usable(target_uri, write=True)
    result = PushResult(experiment, source_uri, target_uri)
    try:
        runs = _all_runs(source, experiment_id_of(source, source_uri, experiment))
        experiment_id = prepare_store(target_uri, experiment)
        target = MlflowClient(target_uri)
        present: dict[str, str] = {}
        partial: list[str] = []
        for copy in _all_runs(target, experiment_id):
            tags = copy.data.tags
            if PUSHED_FROM in tags:
                present[tags[PUSHED_FROM]] = copy.info.run_id
            elif PUSHING_FROM in tags:
                partial.append(copy.info.run_id)
        for run_id in partial:
            _delete(target, run_id)
        result.redone = partial
        held_back: set[str] = set()
        for run in _parents_first(runs):
            run_id = run.info.run_id
            mark = f"{source_uri}#{run_id}"
            parent = run.data.tags.get(PARENT)
            if mark in present:
                result.skipped.append(run_id)
                result.existing[run_id] = present[mark]
            elif run.info.status == "RUNNING" or parent in held_back:
                held_back.add(run_id)
                result.running.append(run_id)
            else:
                copy_id = _copy_run(
                    source,
                    target,
                    run,
                    experiment_id,
                    mark=mark,
                    parent=(result.copy_of(parent) or parent) if parent else None,
                )
                result.copied[run_id] = copy_id
                if on_run is not None:
                    on_run(run_id, copy_id)
    except MlflowException as err:
        if err.error_code != "PERMISSION_DENIED":
            raise
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        raise TrackingError(
            f"user {user!r} may not write experiment {experiment!r} in {target_uri} "
            f"({err.message}); ask the store's admin to grant EDIT on it"
        ) from err
    return result
