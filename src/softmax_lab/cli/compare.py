"""``softmax-lab compare``: runs side by side, best first; filters, two-run diffs, sweep pictures.

Exit codes: 0 done; 1 nothing to compare (no runs yet, nothing to draw) or the pictures could
not be written; 2 a usage error (a bad ``--where``, ``--filter``, ``--sort``, ``--top`` or
``--diff`` run id, an unknown experiment).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from softmax_lab.errors import TrackingError

__all__ = ["run_compare"]

DEFAULT_SORT = "test/error"


def _error(message: str, code: int = 2) -> int:
    print(f"softmax-lab compare: {message}", file=sys.stderr)
    return code


def run_compare(args: argparse.Namespace) -> int:
    # checks that need no store come first
    if args.top is not None and args.top < 1:
        return _error(f"--top must be >= 1, got {args.top}")
    if args.alias is not None and args.register is None:
        return _error("--alias names the version --register makes: give --register NAME too")
    if args.diff and (args.where or args.top is not None or args.plot or args.sort != DEFAULT_SORT):
        return _error("--diff compares two runs: it takes no --where, --sort, --top or --plot")

    from softmax_lab.review import diff, filters, report
    from softmax_lab.tracking import reading, store

    uri = store.normalize_uri(args.tracking_uri)
    try:  # a store that cannot be used, no store, unknown experiment, bad --filter
        experiment = args.experiment or reading.latest_experiment(uri)
        if experiment is None:
            return _error(f"no runs in {uri} yet; run `softmax-lab train` first", 1)
        df = reading.runs_frame(uri, experiment, sweep_id=args.sweep, filter_string=args.filter)
    except TrackingError as err:
        return _error(str(err))
    if args.sweep and df.empty:
        return _error(
            f"no runs of sweep {args.sweep!r} in experiment {experiment!r} (the id is printed "
            f"when a sweep starts and ends; `softmax-lab compare --experiment {experiment}` "
            "lists every run)"
        )

    if args.diff:
        try:
            a, b = (diff.select_run(df, run) for run in args.diff)
        except ValueError as err:
            return _error(f"--diff: {err}")
        print(diff.format_diff(diff.diff_runs(a, b), args.format))
        return 0

    try:
        shown = filters.filter_runs(df, args.where)
        table = report.compare_table(shown, sort=args.sort, top=args.top)
    except ValueError as err:
        return _error(str(err))
    if args.format == "table":
        scope = [f"sweep {args.sweep}" if args.sweep else "all sweeps"]
        scope += [f"--filter {args.filter!r}"] if args.filter else []
        scope += [f"--where {w!r}" for w in args.where]
        count = f"{len(shown)} of {len(df)}" if args.where else f"{len(df)}"
        print(
            f"experiment {experiment!r}, {', '.join(scope)}: {count} runs, "
            f"best first by {args.sort}"
        )
    print(report.format_table(table, args.format))

    if args.register is not None:
        from softmax_lab.cli.register import register

        best = report.ranked_runs(shown, sort=args.sort, top=1)
        best = best[best["status"] == "FINISHED"] if len(best) else best
        if len(best) == 0:
            return _error(f"--register {args.register}: no FINISHED run to register", 1)
        code = register(uri, str(best["run_id"].iloc[0]), args.register, args.alias, "compare")
        if code:
            return code
    if args.plot is not None:
        from softmax_lab.review.sweep_report import METRIC, PER_EPOCH, write_sweep_report

        runs = report.ranked_runs(shown, sort=args.sort, top=args.top)
        if len(runs) == 0:
            return _error(f"--plot {args.plot}: no runs to draw", 1)
        try:
            metric = args.sort if args.sort in PER_EPOCH else METRIC  # e.g. --sort val/error
            paths = write_sweep_report(uri, runs, Path(args.plot), table=table, metric=metric)
        except (OSError, ValueError) as err:
            return _error(f"--plot {args.plot}: could not write the pictures: {err}", 1)
        # the CSV on stdout stays parseable: with --format csv the paths go to stderr
        out = sys.stderr if args.format == "csv" else sys.stdout
        print(f"wrote {len(paths)} files:", *paths, sep="\n  ", file=out)
    return 0
