"""Is anybody there? A quick look at a tracking server before MLflow's client talks to it.

MLflow's HTTP client retries a refused connection with exponential backoff for about two
minutes before it gives up, and then reports the last of many retries. A sweep whose
``tracking.uri`` names a server that is not running should say so at once, naming the URI.
"""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request

from softmax_lab.errors import TrackingError

__all__ = ["check_server"]

TIMEOUT_SECONDS = 5.0


def check_server(uri: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
    """Raise ``TrackingError`` if nothing answers HTTP at ``uri`` (``http://`` or ``https://``).

    Any HTTP answer counts, whatever its status (authentication and the API are MLflow's
    business); so does a TLS failure (certificates are configured for MLflow, not for this
    look). Only a refused, unresolvable or silent address is an error. Other schemes: no-op.
    """
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # it answered
    except urllib.error.URLError as err:
        reason: object = err.reason
    except (TimeoutError, ConnectionError) as err:
        reason = err
    if isinstance(reason, ssl.SSLError):
        return
    if isinstance(reason, TimeoutError):
        why = f"no answer within {timeout:g} s"
    elif isinstance(reason, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(reason, socket.gaierror):
        why = f"unknown host ({reason.strerror})"
    else:
        why = str(reason)
    raise TrackingError(
        f"no MLflow server answers at tracking URI {uri!r}: {why}. Start one (e.g. "
        "`mlflow server --host 127.0.0.1 --port 5000`), or use a SQLite store "
        "(tracking.uri=sqlite:///outputs/mlflow.db)"
    )
