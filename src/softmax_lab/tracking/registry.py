"""The model registry: a run's model as a new version of a registered model, with an alias.

``register_run`` makes the registered model if it is new, logs the run's MLflow model first if
the run has none (``models.ensure_model``), creates the version with the run's final metrics in
its description and points an alias (``champion``) at it, through ``MlflowClient``. Then
``softmax-lab predict models:/NAME@champion …`` and ``mlflow models serve -m
models:/NAME@champion`` use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.exceptions import MlflowException

from softmax_lab.errors import TrackingError
from softmax_lab.tracking.models import ensure_model, run_model_id
from softmax_lab.tracking.reading import reader_for
from softmax_lab.tracking.recorder import METRIC_KEYS
from softmax_lab.tracking.run_lookup import run_info
from softmax_lab.tracking.store import retry_locked

__all__ = ["RegisteredVersion", "describe_run", "register_run"]


@dataclass(frozen=True)
class RegisteredVersion:
    """What ``register_run`` made: ``models:/<name>/<version>`` (and ``@alias``)."""

    name: str
    version: str
    run_id: str
    alias: str | None
    description: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else self.model_uri

    @property
    def model_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def describe_run(run_name: str, run_id: str, experiment: str, metrics: dict[str, float]) -> str:
    """A version's description: which run, and its final metrics (``test/error 0.0815 · …``)."""
    shown = " · ".join(f"{k} {metrics[k]:.5g}" for k in METRIC_KEYS if k in metrics)
    return f"run {run_id} ({run_name}) of experiment {experiment!r}: {shown or 'no metrics'}"


def register_run(
    uri: str | None, run_ref: str, name: str, *, alias: str | None = None
) -> RegisteredVersion:
    """Register the model of run ``run_ref`` (an id or a unique prefix) as a new version of
    ``name``; with ``alias``, point it there.

    Raises
    ------
    TrackingError
        No such run, a run with no trained model, or a name or alias the registry refuses.
    """
    logged = run_info(uri, run_ref)
    uri, client = reader_for(logged.uri)
    run_id = logged.run_id
    ensure_model(uri, run_id)
    model_id = run_model_id(uri, run_id)
    metrics = dict(client.get_run(run_id).data.metrics)
    description = describe_run(logged.run_name, run_id, logged.experiment, metrics)
    try:
        try:
            retry_locked(
                f"create registered model {name!r}", lambda: client.create_registered_model(name)
            )
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = retry_locked(
            f"create a version of {name!r}",
            lambda: client.create_model_version(
                name,
                source=f"models:/{model_id}",
                run_id=run_id,
                description=description,
                model_id=model_id,
            ),
        )
        if alias is not None:
            retry_locked(
                f"set alias {alias!r}",
                lambda: client.set_registered_model_alias(name, alias, str(version.version)),
            )
    except MlflowException as err:
        raise TrackingError(f"cannot register run {run_id} as {name!r}: {err.message}") from err
    return RegisteredVersion(name, str(version.version), run_id, alias, description)
