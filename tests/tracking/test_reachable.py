"""A tracking server that is not there is reported at once, naming the URI."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from helpers.servers import free_port

from softmax_lab.errors import TrackingError
from softmax_lab.tracking import store
from softmax_lab.tracking.reachable import check_server


@pytest.fixture
def not_found_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 that answers 404 to everything."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_connection_is_an_error_naming_the_uri() -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(TrackingError, match=rf"'{uri}': connection refused"):
        check_server(uri)
    assert time.monotonic() - started < 2  # not MLflow's two minutes of retries


def test_a_silent_server_is_an_error_after_the_timeout() -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(TrackingError, match=r"no answer within 0.3 s"):
            check_server(uri, timeout=0.3)


def test_any_http_answer_counts_as_a_server(not_found_server: str) -> None:
    check_server(not_found_server)  # 404 for /health: somebody is there, MLflow takes over


def test_other_schemes_are_not_probed(tmp_path) -> None:
    check_server(f"sqlite:///{tmp_path / 'x.db'}")
    check_server("postgresql://127.0.0.1:1/nothing")


def test_prepare_store_fails_fast_without_a_server() -> None:
    with pytest.raises(TrackingError, match="no MLflow server answers"):
        store.prepare_store(f"http://127.0.0.1:{free_port()}", "x")


def test_resolve_uri_names_a_store_directory_it_cannot_create(tmp_path) -> None:
    (tmp_path / "afile").write_text("in the way")
    uri = f"sqlite:///{tmp_path / 'afile' / 'mlflow.db'}"
    with pytest.raises(TrackingError, match=r"cannot create the directory .*afile"):
        store.resolve_uri(uri)
