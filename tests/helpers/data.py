"""Types of the data fixtures in ``conftest.py``: IDX sets written by tests, a local mirror."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

IdxSetWriter = Callable[..., dict[str, NDArray[np.uint8]]]


@dataclass
class Mirror:
    """A local HTTP server publishing the files in `root` at `url`; `requests` lists GET paths."""

    root: Path
    url: str
    requests: list[str] = field(default_factory=list)


@contextmanager
def serve_directory(root: Path) -> Iterator[tuple[str, list[str]]]:
    """A real ThreadingHTTPServer on 127.0.0.1 (free port) serving ``root``: (its URL, the list
    of GET paths it has been asked for so far)."""
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    # A short poll interval makes shutdown() quick (it waits for the next poll).
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
