"""``softmax-lab push --to URI [--experiment NAME]``: an experiment's runs copied to another store.

Exit codes: 0 done (runs still RUNNING are left out and named: push again when they end);
1 no runs in the source store yet; 2 a store that cannot be used, an unknown experiment, a
server that refuses the user, as one line on stderr.
"""

from __future__ import annotations

import argparse

from softmax_lab.cli.console import report_input_error
from softmax_lab.errors import InputError

__all__ = ["run_push"]


def run_push(args: argparse.Namespace) -> int:
    from softmax_lab.tracking import reading, store
    from softmax_lab.tracking.push import push_experiment

    source = store.normalize_uri(args.tracking_uri)
    try:
        experiment = args.experiment or reading.latest_experiment(source)
        if experiment is None:
            print(f"softmax-lab push: no runs in {source} yet; nothing to push")
            return 1
        print(f"pushing experiment {experiment!r} from {source} to {args.to}")
        result = push_experiment(source, args.to, experiment)
    except InputError as err:
        return report_input_error(err, command="push")
    if result.redone:
        print(f"deleted {len(result.redone)} copies an interrupted push left incomplete")
    for run_id in result.running:
        print(f"note: run {run_id} is still RUNNING (or its sweep is): not pushed")
    print(
        f"copied {len(result.copied)} runs, skipped {len(result.skipped)} already there, "
        f"{len(result.running)} running"
    )
    if result.copied or result.skipped:
        print(
            f"compare with: softmax-lab compare --tracking-uri {result.target} "
            f"--experiment {experiment}"
        )
    return 0
