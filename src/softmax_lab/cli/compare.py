"""``softmax-lab compare``: runs side by side, best first."""

from __future__ import annotations

import argparse
import sys

__all__ = ["run_compare"]


def run_compare(args: argparse.Namespace) -> int:
    from softmax_lab import report, tracking

    uri = tracking.resolve_uri(args.tracking_uri)
    experiment = args.experiment or tracking.latest_experiment(uri)
    if experiment is None:
        print(
            f"softmax-lab compare: no runs in {uri} yet; run `softmax-lab train` first",
            file=sys.stderr,
        )
        return 1
    df = tracking.runs_frame(uri, experiment, sweep_id=args.sweep)
    table = report.compare_table(df, sort=args.sort, top=args.top)
    if args.format == "table":
        scope = f"sweep {args.sweep}" if args.sweep else "all sweeps"
        print(f"experiment {experiment!r}, {scope}: {len(df)} runs, best first by {args.sort}")
    print(report.format_table(table, args.format))
    return 0
