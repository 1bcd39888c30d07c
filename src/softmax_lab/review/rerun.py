"""Rerun a logged run and check that it reproduces: same config, same data, same numbers.

``prepare_rerun`` (in ``softmax_lab.review.rerun_plan``) rebuilds the job from what the original run
logged (``config.yaml``, ``overrides.yaml``, the ``sl.dataset_fingerprint`` tag), applies
``--set`` changes and checks that the dataset on disk has the fingerprint the run used; it
creates nothing, so every mistake (unknown run, bad key, other data) stops before a run exists.
``execute_rerun`` (here) then runs the job as a new run in the same experiment, tagged
``sl.rerun_of``, and compares it with the original (``softmax_lab.review.rerun_compare``): every
per-epoch metric exactly, every parameter array by SHA-256 (``sl.sha256.<name>``).
``epoch_seconds`` is wall time: it is reported, never compared.

Nothing here prints; the CLI shows the plan's warnings and the report lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from softmax_lab.core.training import EpochMetrics
from softmax_lab.errors import TrackingError
from softmax_lab.review.rerun_compare import Comparison, RunRecord, compare_records, verdict
from softmax_lab.review.rerun_plan import RerunPlan
from softmax_lab.runs.fused_job import run_fused_replay
from softmax_lab.runs.job import JobContext, array_sha256, run_job, run_name
from softmax_lab.tracking import reading, recorder, run_lookup, run_writes

__all__ = ["RerunResult", "execute_rerun"]

log = logging.getLogger(__name__)


# --- running and comparing --------------------------------------------------------------------


@dataclass(frozen=True)
class RerunResult:
    """The new run and how it compares with the original."""

    run_id: str
    status: str
    reason: str | None
    comparison: Comparison
    verdict: str


def _record(run: run_lookup.LoggedRun, fallback_names: Sequence[str], scratch: Path) -> RunRecord:
    """Read back a run's metric histories and parameter hashes.

    Runs logged before ``sl.sha256.<name>`` tags existed are hashed from their
    ``params/<name>.npy`` artifacts, for each name in ``fallback_names``.
    """
    history = {k: reading.metric_history(run.uri, run.run_id, k) for k in recorder.METRIC_KEYS}
    prefix = "sl.sha256."
    hashes = {k.removeprefix(prefix): v for k, v in run.tags.items() if k.startswith(prefix)}
    for name in fallback_names:
        if name in hashes or run.status != "FINISHED":
            continue
        try:
            path = run_lookup.download_artifact(
                run.uri, run.run_id, f"params/{name}.npy", scratch / run.run_id
            )
        except TrackingError:
            continue  # not logged: reported as missing
        hashes[name] = array_sha256(np.load(path, allow_pickle=False))
    return RunRecord(run.status, history, hashes)


def execute_rerun(
    plan: RerunPlan,
    *,
    output_root: Path = Path("outputs/reruns"),
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> RerunResult:
    """Run ``plan`` as a new run, compare it with the original, tag it with the verdict.

    The new run is in the original's experiment, tagged ``sl.rerun_of = <original id>`` and,
    once compared, ``sl.rerun_verdict``; its pictures are rendered under
    ``output_root/<date>/<time>-<original id[:8]>``.
    """
    original = plan.original
    now = datetime.now()
    output_dir = output_root / f"{now:%Y-%m-%d}" / f"{now:%H-%M-%S}-{original.run_id[:8]}"
    ctx = JobContext(
        output_dir=output_dir,
        overrides=plan.overrides,
        extra_tags={"sl.rerun_of": original.run_id},
        on_epoch=on_epoch,
    )
    threads = original.tags.get("sl.threads", "")
    # the original's BLAS thread count, so the arithmetic is split the same way
    with threadpool_limits(limits=int(threads) if threads.isdigit() else None, user_api="blas"):
        if plan.fused_group is not None:
            outcome = run_fused_replay(plan.config, ctx, plan.fused_group)
        else:
            outcome = run_job(plan.config, ctx)
    if outcome.run_id is None:  # run_job always creates its run; guard for the type checker
        raise RuntimeError("run_job returned no run id")
    new = run_lookup.run_info(original.uri, outcome.run_id)
    scratch = output_dir / "original-params"
    rerun_record = _record(new, (), scratch)
    original_record = _record(original, list(rerun_record.hashes), scratch)
    comparison = compare_records(original_record, rerun_record)
    result = verdict(comparison, changed=bool(plan.changed))
    name = f"rerun {original.run_id[:8]}: {run_name(plan.config, plan.overrides)}"
    run_writes.set_run_tags(
        original.uri, new.run_id, {"sl.rerun_verdict": result, "mlflow.runName": name[:250]}
    )
    log.info("rerun %s of %s: %s", new.run_id, original.run_id, result)
    return RerunResult(new.run_id, outcome.status, outcome.reason, comparison, result)
