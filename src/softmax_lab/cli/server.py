"""``softmax-lab server start|stop|status``: a team store (``tracking.team_server``).

``start`` is idempotent (a running store is reported, not started twice) and prints the
``tracking.uri`` to use; ``stop`` ends only what ``start`` started, by PID file; ``status``
exits 0 when the store runs, 3 when it does not (as LSB init scripts do). The parser is built
when ``softmax-lab --help`` is, so this module imports nothing heavy at its top.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from softmax_lab.errors import InputError

if TYPE_CHECKING:
    from softmax_lab.tracking.team_server import TeamStore

__all__ = ["DEFAULT_DIR", "NOT_RUNNING_EXIT", "add_server_parser", "run_server"]

DEFAULT_DIR = "outputs/team-store"
NOT_RUNNING_EXIT = 3


def add_server_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``server`` and its ``start``, ``stop``, ``status`` to the subcommands ``sub``."""
    s = sub.add_parser(
        "server",
        help="a team store: MLflow server with authentication on PostgreSQL (start|stop|status)",
        description="A team store in one directory: PostgreSQL (its own cluster, run as the "
        "'postgres' user when you are root) and `mlflow server` with basic authentication and "
        "proxied artifacts. `start` prints the tracking.uri to use and where the admin's "
        "password is (0600).",
    )
    actions = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = actions.add_parser("start", help="start the store (or report the running one)")
    stop = actions.add_parser("stop", help="stop what `start` started")
    status = actions.add_parser("status", help="is it running? exit 0 yes, 3 no")
    for p in (start, stop, status):
        p.add_argument(
            "--dir",
            type=Path,
            default=Path(DEFAULT_DIR),
            help="the store's directory: data, artifacts, credentials, logs "
            f"(default {DEFAULT_DIR})",
        )
    start.add_argument("--host", default="127.0.0.1", help="the MLflow server's address")
    start.add_argument("--port", type=int, default=5000, help="the MLflow server's port")
    start.add_argument("--pg-host", default="127.0.0.1", help="PostgreSQL's address")
    start.add_argument(
        "--pg-port",
        type=int,
        default=5433,  # Debian's own cluster, when its service runs, has 5432
        help="PostgreSQL's port (default 5433)",
    )
    start.add_argument("--workers", type=int, default=2, help="MLflow server worker processes")


def run_server(args: argparse.Namespace) -> int:
    from softmax_lab.cli.console import report_input_error
    from softmax_lab.tracking.team_server import TeamStore

    store = TeamStore(args.dir)
    try:
        if args.action == "start":
            return _start(store, args)
        if args.action == "stop":
            return _stop(store)
        return _status(store)
    except InputError as e:
        return report_input_error(e, command=f"server {args.action}")


def _use(store: TeamStore, uri: str) -> None:
    print(f"tracking.uri={uri}")
    print(f"admin credentials: {store.admin_env} (mode 0600); to use the store:")
    print(f"  export MLFLOW_TRACKING_URI={uri}")
    print(f"  set -a; . {store.admin_env}; set +a")
    if store.study_storage_file.is_file():
        print(
            f"Optuna searches (hydra/sweeper=optuna) keep their studies beside it: "
            f"hydra.sweeper.storage=$(cat {store.study_storage_file})"
        )


def _start(store: TeamStore, args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    state = store.state()
    if state.running:
        assert state.uri is not None
        print(
            f"team store in {store.root} is running already (mlflow server pid "
            f"{state.mlflow_pid}, PostgreSQL pid {state.postgres_pid} on port "
            f"{state.postgres_port}); `softmax-lab server stop --dir {args.dir}` stops it"
        )
        _use(store, state.uri)
        return 0
    if state.mlflow_pid is not None:  # left without its database: start both afresh
        store.stop_mlflow()
    from softmax_lab.cli.ui import check_port

    # ports first: nothing is made or started when one is taken
    if state.postgres_pid is None:
        check_port(args.pg_port, host=args.pg_host, option="--pg-port")
    check_port(args.port, host=args.host, option="--port")
    store.prepare()
    pg_port = state.postgres_port
    started_postgres = False
    if pg_port is None:
        store.start_postgres(host=args.pg_host, port=args.pg_port)
        pg_port, started_postgres = args.pg_port, True
    try:
        uri = store.start_mlflow(
            host=args.host,
            port=args.port,
            pg_host=args.pg_host,
            pg_port=pg_port,
            workers=args.workers,
        )
    except InputError:
        if started_postgres:  # leave nothing running that this call started
            store.cluster.stop()
        raise
    print(
        f"team store in {store.root} started: PostgreSQL on {args.pg_host}:{pg_port}, "
        f"mlflow server at {uri}"
    )
    _use(store, uri)
    return 0


def _stop(store: TeamStore) -> int:
    stopped = []
    if store.stop_mlflow():
        stopped.append("mlflow server")
    if store.cluster.stop():
        stopped.append("PostgreSQL")
    if stopped:
        print(f"team store in {store.root}: stopped {' and '.join(stopped)}; data kept")
    else:
        print(f"team store in {store.root}: nothing running")
    return 0


def _status(store: TeamStore) -> int:
    state = store.state()
    if state.mlflow_pid is not None:
        print(f"mlflow server: running, pid {state.mlflow_pid}, tracking.uri={state.uri}")
    else:
        print("mlflow server: not running")
    if state.postgres_pid is not None:
        print(f"PostgreSQL: running, pid {state.postgres_pid}, port {state.postgres_port}")
    else:
        print("PostgreSQL: not running")
    return 0 if state.running else NOT_RUNNING_EXIT
