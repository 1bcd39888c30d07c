"""``softmax-lab rerun RUN_ID``: run a logged run again and say whether it reproduced exactly."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from softmax_lab.cli.console import report_input_error
from softmax_lab.errors import InputError

if TYPE_CHECKING:
    from softmax_lab.review.rerun_compare import Comparison

__all__ = ["run_rerun"]


def _err(message: str) -> None:
    print(f"softmax-lab rerun: {message}", file=sys.stderr)


def _counts(c: Comparison) -> str:
    params = sum(not p.match for p in c.params)
    return (
        f"{len(c.differences)} of {c.compared} per-epoch values and "
        f"{params} of {len(c.params)} parameter arrays"
    )


def run_rerun(args: argparse.Namespace) -> int:
    """Exit code 0: reproduced exactly (or the --set run finished); 1: differs; 2: bad input."""
    from softmax_lab.cli.console import EpochTable
    from softmax_lab.review import rerun, rerun_compare, rerun_plan

    try:
        plan = rerun_plan.prepare_rerun(args.tracking_uri, args.run_id, args.set)
    except InputError as e:
        return report_input_error(e, command="rerun")
    o = plan.original
    print(f"rerun of {o.run_id} ({o.run_name!r}, {o.status}) in experiment {o.experiment!r}")
    if args.set:
        print("with --set " + " ".join(args.set))
    if plan.fingerprint == plan.logged_fingerprint:
        print(f"dataset {plan.config.dataset.name}: fingerprint {plan.fingerprint[:12]}… as logged")
    for note in plan.notes:
        print(f"note: {note}")
    for warning in plan.warnings:
        _err(f"warning: {warning}")
    table = EpochTable(plan.config.optim.epochs, val=plan.config.dataset.val_size > 0)
    try:
        result = rerun.execute_rerun(plan, on_epoch=table)
    except KeyboardInterrupt:
        _err("interrupted; the new run was closed as KILLED")
        return 130
    finally:
        table.close()
    reason = f" ({result.reason})" if result.reason else ""
    print(f"new run {result.run_id}: {result.status}{reason}, tagged sl.rerun_of={o.run_id}")
    for line in rerun_compare.format_differences(result.comparison):
        print(line)
    c = result.comparison
    if plan.changed:
        changes = " ".join(f"{k}={v}" for k, v in plan.changed.items())
        print(f"changed (--set {changes}): {_counts(c)} differ from the original")
        return 0 if result.status == "FINISHED" else 1
    if result.verdict == rerun_compare.REPRODUCED:
        print(rerun_compare.REPRODUCED)
        return 0
    print(f"{result.verdict}: {_counts(c)} differ from the original")
    return 1
