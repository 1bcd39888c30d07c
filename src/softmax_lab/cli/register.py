"""``softmax-lab register RUN_ID NAME [--alias ALIAS]``: a run's model into the model registry.

Also what ``compare --register NAME`` calls for the best run it shows. Exit codes: 0 done;
2 a run, name or alias that cannot be used, as one line on stderr.
"""

from __future__ import annotations

import argparse

from softmax_lab.cli.console import report_input_error
from softmax_lab.errors import InputError

__all__ = ["register", "run_register"]


def register(uri: str | None, run_ref: str, name: str, alias: str | None, command: str) -> int:
    """Register and print what was made; an ``InputError`` is one line and exit code 2."""
    from softmax_lab.tracking.registry import register_run

    try:
        made = register_run(uri, run_ref, name, alias=alias)
    except InputError as err:
        return report_input_error(err, command=command)
    print(f"registered {made.model_uri}" + (f" as @{made.alias}" if made.alias else ""))
    print(f"  {made.description}")
    print(f"predict with: softmax-lab predict {made.uri} IMAGE…")
    return 0


def run_register(args: argparse.Namespace) -> int:
    return register(args.tracking_uri, args.run_id, args.name, args.alias, "register")
