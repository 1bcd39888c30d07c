"""Is anybody there, and does it let us in? A quick look at a tracking server before MLflow's
client talks to it.

MLflow's HTTP client retries a refused connection with exponential backoff for about two
minutes before it gives up, and then reports the last of many retries. A sweep whose
``tracking.uri`` names a server that is not running should say so at once, naming the URI; one
whose server refuses its credentials (MLflow's basic-auth app: HTTP 401) likewise, before any
work, instead of a traceback at the first write.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import urllib.error
import urllib.request

from softmax_lab.errors import TrackingError

__all__ = ["auth_header", "check_server"]

TIMEOUT_SECONDS = 5.0
# one cheap authenticated read: any signed-in user of MLflow's basic-auth app may list
# experiments (it sees those it has permission on), an anonymous or wrong one gets 401
PROBE_PATH = "/api/2.0/mlflow/experiments/search?max_results=1"


def auth_header() -> dict[str, str]:
    """The ``Authorization`` header MLflow's client sends, from the same variables:
    ``MLFLOW_TRACKING_TOKEN`` (bearer), else ``MLFLOW_TRACKING_USERNAME`` and
    ``MLFLOW_TRACKING_PASSWORD`` (basic); empty when none is set."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}
    return {}


def check_server(uri: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
    """Raise ``TrackingError`` if nothing answers HTTP at ``uri`` (``http://`` or ``https://``),
    or if it refuses the credentials of ``auth_header`` (HTTP 401, or 403 for the listing).

    One request, listing one experiment as the user named by ``MLFLOW_TRACKING_USERNAME`` and
    ``MLFLOW_TRACKING_PASSWORD`` (or ``MLFLOW_TRACKING_TOKEN``). Any other HTTP answer counts,
    whatever its status (the API is MLflow's business); so does a TLS failure (certificates are
    configured for MLflow, not for this look). Other schemes: no-op.
    """
    if not uri.startswith(("http://", "https://")):
        return
    request = urllib.request.Request(uri.rstrip("/") + PROBE_PATH, headers=auth_header())
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise TrackingError(_refused(uri, err.code)) from None
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


def _refused(uri: str, status: int) -> str:
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if status == 403:
        return (
            f"the MLflow server at tracking URI {uri!r} denies user {user!r} access (HTTP 403); "
            "ask its admin for permission"
        )
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        given = "refuses the token in MLFLOW_TRACKING_TOKEN"
    elif user and os.environ.get("MLFLOW_TRACKING_PASSWORD"):
        given = f"refuses user {user!r} with the password in MLFLOW_TRACKING_PASSWORD"
    else:
        given = "requires a user: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
    return f"the MLflow server at tracking URI {uri!r} {given} (HTTP 401)"
