"""A run's data as MLflow dataset inputs: one per part (training, validation, test).

MLflow records the datasets a run used as *inputs*: the runs table's Dataset column, the run
page's Datasets, and ``search_runs`` filters on ``dataset.name``, ``dataset.digest`` and
``dataset.context``. ``dataset_inputs`` describes a job's data from plain values the job already
has (name, fingerprint, source, shapes): no pass over the arrays, unlike
``mlflow.data.from_numpy``, which hashes the data for a digest and infers a schema from it.

Each part is an input of its own, named ``<dataset>/<part>`` (``mnist_5k/train``) and tagged
with its context (``mlflow.data.context``: ``training``, ``validation``, ``test``). All parts of
a dataset share one digest, the dataset's fingerprint: it identifies the whole split (train and
test files together, or the CSV and the split parameters), and it is what ``rerun`` and resume
key on, so ``dataset.digest = '…'`` finds every run on the same data. MLflow keeps one input per
(name, digest) and run, hence the part in the name. The digest is the fingerprint's first
``DIGEST_LENGTH`` hex digits: MLflow refuses longer digests in every store ("'digest' exceeds
the maximum length of 36 characters"; its ``datasets.digest`` column is VARCHAR(36)).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from mlflow.data.schema import TensorDatasetSchema
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.types import Schema, TensorSpec
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

__all__ = [
    "CONTEXTS",
    "DIGEST_LENGTH",
    "DataPart",
    "dataset_digest",
    "dataset_inputs",
    "input_name",
]

DIGEST_LENGTH = 36  # MLflow's longest digest (mlflow.utils.validation.MAX_DATASET_DIGEST_SIZE)
# the contexts, in the order the parts are logged, and the suffix of each part's input name
CONTEXTS = {"training": "train", "validation": "validation", "test": "test"}
_URL = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)


@dataclass(frozen=True)
class DataPart:
    """One part of a dataset, as its shapes and dtypes (the arrays themselves stay out).

    Attributes
    ----------
    context : str
        One of ``CONTEXTS``: ``"training"``, ``"validation"`` or ``"test"``.
    features_shape : tuple of int
        ``X.shape``, e.g. ``(4000, 784)``.
    features_dtype : str
        A NumPy dtype name, ``X.dtype.name``, e.g. ``"float32"``.
    targets_shape : tuple of int
        ``y.shape``, e.g. ``(4000,)``.
    targets_dtype : str
        e.g. ``"uint8"``.
    """

    context: str
    features_shape: tuple[int, ...]
    features_dtype: str
    targets_shape: tuple[int, ...]
    targets_dtype: str

    def __post_init__(self) -> None:
        if self.context not in CONTEXTS:
            raise ValueError(
                f"data part context must be one of {', '.join(CONTEXTS)}, got {self.context!r}"
            )

    def schema(self) -> str:
        """The part's MLflow tensor schema as JSON, as ``mlflow.data.from_numpy`` would log it:
        the first (row) dimension variable (-1), the others as they are."""
        spec = TensorDatasetSchema(
            features=Schema([_tensor(self.features_shape, self.features_dtype)]),
            targets=Schema([_tensor(self.targets_shape, self.targets_dtype)]),
        )
        return json.dumps(spec.to_dict())

    def profile(self) -> str:
        """The part's profile as JSON, the keys ``mlflow.data.from_numpy`` logs: shape, size
        (elements) and bytes of features and targets."""
        profile: dict[str, object] = {}
        for kind, shape, dtype in (
            ("features", self.features_shape, self.features_dtype),
            ("targets", self.targets_shape, self.targets_dtype),
        ):
            size = int(np.prod(shape, dtype=np.int64))
            profile |= {
                f"{kind}_shape": list(shape),
                f"{kind}_size": size,
                f"{kind}_nbytes": size * np.dtype(dtype).itemsize,
            }
        return json.dumps(profile)


def _tensor(shape: tuple[int, ...], dtype: str) -> TensorSpec:
    return TensorSpec(np.dtype(dtype), (-1, *shape[1:]))


def dataset_digest(fingerprint: str) -> str:
    """The MLflow digest of a dataset: its fingerprint's first ``DIGEST_LENGTH`` hex digits."""
    if len(fingerprint) < DIGEST_LENGTH or not re.fullmatch(r"[0-9a-f]+", fingerprint):
        raise ValueError(
            f"fingerprint must be at least {DIGEST_LENGTH} lowercase hex digits, "
            f"got {fingerprint!r}"
        )
    return fingerprint[:DIGEST_LENGTH]


def input_name(dataset: str, context: str) -> str:
    """The input name of a part: ``mnist_5k/train``, ``mnist_5k/validation``, ``mnist_5k/test``."""
    return f"{dataset}/{CONTEXTS[context]}"


def _source(source: str) -> tuple[str, str]:
    """MLflow's (source type, source JSON) for a path or URL, as its own dataset sources write
    them (``LocalArtifactDatasetSource``, ``HTTPDatasetSource``)."""
    if _URL.match(source):
        if source.lower().startswith(("http://", "https://")):
            return "http", json.dumps({"url": source})
        return source.split(":", 1)[0].lower(), json.dumps({"uri": source})
    return "local", json.dumps({"uri": source})


def dataset_inputs(
    name: str, fingerprint: str, source: str, parts: Sequence[DataPart]
) -> list[DatasetInput]:
    """The dataset inputs of a run on ``parts`` of one dataset, for ``MlflowClient.log_inputs``.

    Parameters
    ----------
    name : str
        The dataset's name (``Dataset.name``, e.g. ``"mnist_5k"``).
    fingerprint : str
        ``Dataset.fingerprint``, hex SHA-256: the digest of every part (``dataset_digest``).
    source : str
        Where the data came from: a directory or file path (``Dataset.source``) or a URL.
    parts : sequence of DataPart
        One per context, e.g. training and test; a validation part when the data has one.

    Returns
    -------
    list of DatasetInput
        One per part, in the order of ``CONTEXTS``, named ``input_name(name, context)``, tagged
        ``mlflow.data.context = context``, with the part's schema and profile.

    Raises
    ------
    ValueError
        No parts, two parts of one context, or a fingerprint that is not hex.
    """
    contexts = [p.context for p in parts]
    if not parts or len(set(contexts)) != len(contexts):
        raise ValueError(f"parts must have one context each, at least one, got {contexts}")
    digest = dataset_digest(fingerprint)
    source_type, source_json = _source(source)
    order = list(CONTEXTS)
    return [
        DatasetInput(
            Dataset(
                name=input_name(name, part.context),
                digest=digest,
                source_type=source_type,
                source=source_json,
                schema=part.schema(),
                profile=part.profile(),
            ),
            tags=[InputTag(MLFLOW_DATASET_CONTEXT, part.context)],
        )
        for part in sorted(parts, key=lambda p: order.index(p.context))
    ]
