"""``runs.job.data_parts``: which parts of a Dataset a run logs as MLflow dataset inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from softmax_lab.data.dataset import Dataset
from softmax_lab.data.sources import load_dataset
from softmax_lab.runs.job import data_parts
from softmax_lab.tracking.run_inputs import DataPart


@dataclass(frozen=True, eq=False)
class SplitDataset(Dataset):
    """A Dataset holding a validation part, as ``dataset.val_size`` will make."""

    X_val: NDArray[np.float32] | None = None
    y_val: NDArray[np.uint8] | None = None


def test_a_dataset_without_validation_logs_training_and_test(digits_dir: Path) -> None:
    data = load_dataset("idx", path=digits_dir)
    assert data_parts(data) == [
        DataPart("training", (800, 784), "float32", (800,), "uint8"),
        DataPart("test", (200, 784), "float32", (200,), "uint8"),
    ]


def test_a_dataset_with_validation_arrays_logs_a_validation_part(digits_dir: Path) -> None:
    data = load_dataset("idx", path=digits_dir)
    split = SplitDataset(
        data.name,
        np.ascontiguousarray(data.X_train[:700]),
        np.ascontiguousarray(data.y_train[:700]),
        data.X_test,
        data.y_test,
        fingerprint=data.fingerprint,
        source=data.source,
        X_val=np.ascontiguousarray(data.X_train[700:]),
        y_val=np.ascontiguousarray(data.y_train[700:]),
    )
    assert [(p.context, p.features_shape, p.targets_shape) for p in data_parts(split)] == [
        ("training", (700, 784), (700,)),
        ("validation", (100, 784), (100,)),
        ("test", (200, 784), (200,)),
    ]
    none = SplitDataset(
        data.name, data.X_train, data.y_train, data.X_test, data.y_test, "f" * 64, "/d"
    )
    assert [p.context for p in data_parts(none)] == ["training", "test"]  # X_val None
