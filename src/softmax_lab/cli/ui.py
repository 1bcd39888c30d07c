"""``softmax-lab ui``: the MLflow UI over the project's store, bound to 127.0.0.1."""

from __future__ import annotations

import argparse
import os
import socket
import sys

from softmax_lab.cli.console import report_input_error
from softmax_lab.errors import InputError

__all__ = ["check_port", "run_ui"]


def check_port(port: int, *, host: str = "127.0.0.1", option: str = "--port") -> None:
    """Raise ``InputError`` unless ``port`` is a TCP port this process can listen on at
    ``host`` now (checked before a server starts: MLflow would print a traceback and exit 0).
    ``option`` names the command-line option that chose it."""
    if not 1 <= port <= 65535:
        raise InputError(f"{option} must be a TCP port, 1 to 65535, got {port}")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            s.bind((host, port))
        except OSError as err:
            raise InputError(
                f"cannot listen on {host}:{port} ({err.strerror}); is another server "
                f"using it? Choose another with {option}"
            ) from err


def run_ui(args: argparse.Namespace) -> int:
    from softmax_lab.tracking import store

    try:
        uri = store.resolve_uri(args.tracking_uri)
        if "://" in uri and uri.split("://", 1)[0] in ("http", "https"):
            store.check_usable(uri, write=False)
            print(f"the store is a tracking server already: open {uri} in a browser")
            return 0
        store.check_usable(uri, write=True)  # the UI's server may create the store
        check_port(args.port)
    except InputError as e:
        return report_input_error(e, command="ui")
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(args.port),
        "--workers",  # one person browsing: one worker (MLflow's default is 4 processes)
        "1",
    ]
    # nor MLflow's job runner (a huey consumer and a queue directory left in /dev/shm): the
    # UI over softmax-lab's runs needs no server-side jobs
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    artifacts = store.artifact_root_for(uri)
    if artifacts is not None:  # experiments created in the UI keep artifacts beside the store
        cmd += ["--artifacts-destination", artifacts]
    print(f"MLflow UI on http://127.0.0.1:{args.port} over {uri} (Ctrl-C stops it)", flush=True)
    os.execv(sys.executable, cmd)  # replaces this process: Ctrl-C goes straight to the server
    return 0  # unreachable
