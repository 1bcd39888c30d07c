"""``softmax-lab ui``: the MLflow UI over the project's store, bound to 127.0.0.1."""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["run_ui"]


def run_ui(args: argparse.Namespace) -> int:
    from softmax_lab.tracking import store

    uri = store.resolve_uri(args.tracking_uri)
    if "://" in uri and uri.split("://", 1)[0] in ("http", "https"):
        print(f"the store is a tracking server already: open {uri} in a browser")
        return 0
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
    ]
    artifacts = store.artifact_root_for(uri)
    if artifacts is not None:  # experiments created in the UI keep artifacts beside the store
        cmd += ["--artifacts-destination", artifacts]
    print(f"MLflow UI on http://127.0.0.1:{args.port} over {uri} (Ctrl-C stops it)", flush=True)
    os.execv(sys.executable, cmd)  # replaces this process: Ctrl-C goes straight to the server
    return 0  # unreachable
