"""A run's trained hypothesis as an MLflow model: the pyfunc wrapper, logging it, finding it.

A FINISHED run's θ (or W1, W2) becomes an MLflow pyfunc model named ``model``: it loads with
``mlflow.pyfunc.load_model("runs:/<run id>/model")`` and serves with ``mlflow models serve -m
runs:/<run id>/model --env-manager local``. Its input is a float32 tensor of shape (-1, 784),
pixels in [0, 1] as the runs trained on; its output one row per image: ``label`` (the arg-max
class) and ``p0`` … ``p9`` (the softmax probabilities).

The model directory holds the parameters as ``.npy`` artifacts and ``HypothesisModel``, whose
``predict`` uses NumPy and ``softmax_lab.core.model`` only. Its requirements are given, never
inferred (inference would import and run the model in a subprocess): mlflow, numpy, pandas and
softmax-lab at the versions logging it. So it serves in an environment with softmax-lab
installed (``--env-manager local``); softmax-lab is not on PyPI for a fresh virtualenv.

Which runs log their model (``tracking.log_model``, see ``logs_at_close``): ``single`` (the
default) logs a single run's model when it finishes and a sweep's best run's model at the end
of the sweep, from its ``params/*.npy`` (``log_run_model``); ``all`` logs every run's; ``none``
none. A run without a model gets one after the fact, from the same ``.npy`` files, when it is
registered or predicted with (``ensure_model``).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import LoggedModelOutput, LoggedModelStatus
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.pyfunc import PyFuncModel, PythonModel, PythonModelContext
from mlflow.types import ColSpec, Schema, TensorSpec
from numpy.typing import NDArray

from softmax_lab.config.schema import TrackingConfig
from softmax_lab.core.model import class_probabilities, model_from_params
from softmax_lab.errors import TrackingError
from softmax_lab.tracking.reading import reader_for
from softmax_lab.tracking.recorder import RunRecorder
from softmax_lab.tracking.run_lookup import run_info
from softmax_lab.tracking.store import normalize_uri

__all__ = [
    "MODEL_NAME",
    "N_FEATURES",
    "HypothesisModel",
    "ensure_model",
    "load_pyfunc",
    "log_hypothesis",
    "log_job_model",
    "log_run_model",
    "logs_at_close",
    "model_signature",
    "model_uri_for",
    "run_model_id",
    "run_model_uri",
]

log = logging.getLogger(__name__)

MODEL_NAME = "model"  # the logged model's name: runs:/<run id>/model
N_FEATURES = 784  # 28×28 pixels


def logs_at_close(tracking: TrackingConfig) -> bool:
    """Does a job log its model as it finishes? ``all``: every job; ``single``: a single run
    (not a sweep's job: the sweep logs its best run's at its end); ``none``: never."""
    mode = tracking.log_model
    return mode == "all" or (mode == "single" and tracking.sweep_id is None)


class HypothesisModel(PythonModel):
    """The pyfunc wrapper: parameters from the model's ``.npy`` artifacts, NumPy inference."""

    def load_context(self, context: PythonModelContext) -> None:
        params = {name: np.load(path) for name, path in context.artifacts.items()}
        self.model = model_from_params(params)

    def predict(  # model_input's hint must be plain ndarray: MLflow then infers nothing from it
        self, context: Any, model_input: np.ndarray, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Labels and class probabilities of each row of ``model_input``.

        Parameters
        ----------
        model_input : array-like of shape (m, 784), float
            Pixels in [0, 1] (MNIST's scale), one image a row.

        Returns
        -------
        pandas.DataFrame with m rows
            ``label`` (int64, the arg-max class) and ``p0`` … ``p{k-1}`` (float32).
        """
        X = np.ascontiguousarray(np.asarray(model_input, dtype=np.float32))
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != N_FEATURES:
            raise ValueError(f"expected images of shape (m, {N_FEATURES}), got {X.shape}")
        P = class_probabilities(self.model, X)  # (m, k)
        frame = pd.DataFrame(P, columns=[f"p{j}" for j in range(P.shape[1])])
        frame.insert(0, "label", P.argmax(axis=1).astype(np.int64))
        return frame


def model_signature(n_classes: int = 10) -> ModelSignature:
    """float32 (-1, 784) in; ``label`` (long) and ``p0`` … (float) out."""
    outputs = [ColSpec("long", "label")] + [ColSpec("float", f"p{j}") for j in range(n_classes)]
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, N_FEATURES))]),
        outputs=Schema(outputs),  # type: ignore[arg-type]
    )


def _requirements() -> list[str]:
    pins = []
    for dist in ("mlflow", "numpy", "pandas", "softmax-lab"):
        try:
            pins.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:  # e.g. mlflow-skinny: name what is needed, unpinned
            pins.append(dist)
    return pins


def log_hypothesis(uri: str, run_id: str, params: Mapping[str, NDArray[np.floating]]) -> str:
    """Log the hypothesis with ``params`` as run ``run_id``'s MLflow model ``model``.

    What ``mlflow.pyfunc.log_model`` does, through the client of ``uri`` (no global tracking
    URI, no active run; the run may be finished): a logged model in the run's experiment, the
    model directory saved locally and uploaded, the run's output set to it, the model READY.

    Parameters
    ----------
    uri : str
        The run's (normalised) tracking URI.
    run_id : str
    params : mapping
        ``{"theta": (784, k)}`` or ``{"W1": (784, h), "W2": (h, k)}``, float32.

    Returns
    -------
    str
        ``runs:/<run_id>/model``.
    """
    model = model_from_params(dict(params))  # a wrong set of arrays fails here, not on load
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    logged = client.create_logged_model(
        run.info.experiment_id,
        name=MODEL_NAME,
        source_run_id=run_id,
        params={k: v for k, v in run.data.params.items() if k.startswith("model.")},
    )
    try:
        with tempfile.TemporaryDirectory(prefix="softmax-lab-model-") as tmp:
            files = {}
            for name, array in params.items():
                files[name] = str(Path(tmp) / f"{name}.npy")
                np.save(files[name], np.asarray(array, dtype=np.float32), allow_pickle=False)
            local = Path(tmp) / MODEL_NAME
            # The pickled python_model is a reference to the installed class, no code: MLflow's
            # warning about pickles (one stderr line per model) says nothing here.
            with _quiet("mlflow.pyfunc"):
                mlflow.pyfunc.save_model(
                    str(local),
                    mlflow_model=Model(
                        artifact_path=logged.artifact_location,
                        model_uuid=logged.model_id,
                        run_id=run_id,
                        model_id=logged.model_id,
                    ),
                    python_model=HypothesisModel(),
                    artifacts=files,
                    signature=model_signature(model.n_classes),
                    input_example=np.zeros((1, N_FEATURES), dtype=np.float32),
                    pip_requirements=_requirements(),
                )
            client.log_model_artifacts(logged.model_id, str(local))
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return f"runs:/{run_id}/{MODEL_NAME}"


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Only errors from ``logger`` meanwhile."""
    target = logging.getLogger(logger)
    before = target.level
    target.setLevel(logging.ERROR)
    try:
        yield
    finally:
        target.setLevel(before)


def log_job_model(rec: RunRecorder, params: Mapping[str, NDArray[np.floating]]) -> None:
    """Log a job's model as it finishes; a failure does not fail the trained run: it is
    logged as a warning and kept in the run's tag ``sl.model_error``."""
    try:
        log_hypothesis(rec.uri, rec.run_id, params)
    except Exception as err:  # the model is a view of the run's params/*.npy, not the run
        problem = f"{type(err).__name__}: {err}"
        log.warning("the MLflow model of run %s failed: %s", rec.run_id, problem)
        rec.set_tags({"sl.model_error": problem[:500]}, defer=True)


def run_model_id(uri: str | None, run_id: str) -> str | None:
    """The id (``m-…``) of the run's logged model (the latest, if several), else None."""
    uri, client = reader_for(uri)
    run = client.get_run(run_id)
    if run.outputs is not None and run.outputs.model_outputs:
        return str(run.outputs.model_outputs[-1].model_id)
    return None


def run_model_uri(uri: str | None, run_id: str) -> str | None:
    """``runs:/<run_id>/model`` if the run has a logged model, else None."""
    return f"runs:/{run_id}/{MODEL_NAME}" if run_model_id(uri, run_id) else None


def log_run_model(uri: str | None, run_id: str) -> str:
    """Log a FINISHED run's model after the fact, from its ``params/*.npy`` artifacts.

    Returns ``runs:/<run_id>/model``.

    Raises
    ------
    TrackingError
        The run is not FINISHED, or has no ``params/*.npy`` (e.g. it failed).
    """
    uri, client = reader_for(uri)
    run = client.get_run(run_id)
    if run.info.status != "FINISHED":
        raise TrackingError(
            f"run {run_id} is {run.info.status}, not FINISHED: it has no trained model"
        )
    with tempfile.TemporaryDirectory(prefix="softmax-lab-") as tmp:
        try:
            local = Path(client.download_artifacts(run_id, "params", tmp))
        except (MlflowException, OSError) as err:
            raise TrackingError(f"run {run_id} has no params/*.npy in {uri}: {err}") from err
        params = {p.stem: np.load(p, allow_pickle=False) for p in sorted(local.glob("*.npy"))}
    if not params:
        raise TrackingError(f"run {run_id} has no params/*.npy in {uri}: no trained model")
    try:
        model_uri = log_hypothesis(uri, run_id, params)
    except ValueError as err:  # arrays that are no hypothesis of ours
        raise TrackingError(f"run {run_id}: its params/*.npy are no model: {err}") from err
    log.info("logged the model of run %s", run_id)
    return model_uri


def ensure_model(uri: str | None, run_id: str) -> str:
    """``runs:/<run_id>/model``, logging the run's model first if it has none."""
    return run_model_uri(uri, run_id) or log_run_model(uri, run_id)


def model_uri_for(uri: str | None, ref: str) -> str:
    """The MLflow model URI that ``ref`` names, logging a run's model first if it has none.

    ``ref`` is ``models:/NAME@ALIAS`` (or ``models:/NAME/VERSION``, taken as it is),
    ``runs:/<run id>/model``, or a run id or unique prefix of one (``compare`` shows 8
    characters).

    Raises
    ------
    TrackingError
        No such run, an ambiguous prefix, or a run with no trained model (not FINISHED).
    """
    if ref.startswith("models:/"):
        return ref
    if ref.startswith("runs:/"):
        run_ref, _, path = ref.removeprefix("runs:/").partition("/")
        if path.strip("/") != MODEL_NAME:
            raise TrackingError(f"{ref}: softmax-lab runs log their model as runs:/<id>/model")
        ref = run_ref
    run_id = run_info(uri, ref).run_id
    return ensure_model(uri, run_id)


def load_pyfunc(uri: str | None, ref: str) -> PyFuncModel:
    """The MLflow pyfunc model ``ref`` names (see ``model_uri_for``), loaded from store ``uri``.

    Raises
    ------
    TrackingError
        As ``model_uri_for``; or MLflow cannot load it (e.g. no such registered model or alias).
    """
    uri = normalize_uri(uri)
    model_uri = model_uri_for(uri, ref)
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)  # load_model resolves runs:/ and models:/ in the global store
    try:
        return mlflow.pyfunc.load_model(model_uri)
    except MlflowException as err:
        raise TrackingError(f"cannot load model {model_uri} from {uri}: {err.message}") from err
    finally:
        mlflow.set_tracking_uri(before)
