"""``tracking.run_inputs`` and ``RunRecorder.log_inputs`` against a real SQLite store.

The inputs are built from shapes and the fingerprint only; a test checks that their schema and
profile are what ``mlflow.data.from_numpy`` (which reads the arrays) would log.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput
from mlflow.exceptions import MlflowException

from softmax_lab.data.sources import load_dataset
from softmax_lab.tracking.recorder import RunRecorder
from softmax_lab.tracking.run_inputs import (
    DIGEST_LENGTH,
    DataPart,
    dataset_digest,
    dataset_inputs,
)
from softmax_lab.tracking.store import prepare_store

FINGERPRINT = "e065f99e7ed183c1435e60369cf227ba9d7f52957b9335dd875c3832c5f38071"


def part(context: str, m: int, n: int = 784) -> DataPart:
    return DataPart(context, (m, n), "float32", (m,), "uint8")


def test_schema_and_profile_are_what_from_numpy_would_log(digits_dir: Path) -> None:
    data = load_dataset("idx", path=digits_dir)
    (made,) = dataset_inputs(
        "idx",
        data.fingerprint,
        data.source,
        [DataPart("training", data.X_train.shape, "float32", data.y_train.shape, "uint8")],
    )
    # from_numpy hashes the arrays unless given a digest; its schema and profile read them
    reference = mlflow.data.from_numpy(
        data.X_train, targets=data.y_train, source=data.source, digest="x"
    )._to_mlflow_entity()
    assert json.loads(made.dataset.schema) == json.loads(reference.schema)
    assert json.loads(made.dataset.profile) == json.loads(reference.profile)
    assert (made.dataset.source_type, made.dataset.source) == (
        reference.source_type,
        reference.source,
    )  # "local", {"uri": the IDX directory}
    assert json.loads(made.dataset.source) == {"uri": str(digits_dir.resolve())}


def test_one_input_per_part_named_by_part_with_the_fingerprint_as_digest() -> None:
    parts = [part("test", 200), part("training", 700), part("validation", 100)]
    inputs = dataset_inputs("mnist_5k", FINGERPRINT, "/data/mnist_5k.csv.gz", parts)
    assert [(i.dataset.name, [(t.key, t.value) for t in i.tags]) for i in inputs] == [
        ("mnist_5k/train", [("mlflow.data.context", "training")]),
        ("mnist_5k/validation", [("mlflow.data.context", "validation")]),
        ("mnist_5k/test", [("mlflow.data.context", "test")]),
    ]  # in the order training, validation, test, whatever the order given
    assert {i.dataset.digest for i in inputs} == {FINGERPRINT[:DIGEST_LENGTH]}
    assert [json.loads(i.dataset.profile)["features_shape"] for i in inputs] == [
        [700, 784],
        [100, 784],
        [200, 784],
    ]


def test_a_url_source_is_an_http_source() -> None:
    url = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    (made,) = dataset_inputs("mnist", FINGERPRINT, url, [part("test", 10)])
    assert made.dataset.source_type == "http"
    assert json.loads(made.dataset.source) == {"url": url}


@pytest.mark.parametrize(
    ("parts", "match"),
    [
        ([], r"parts must have one context each, at least one, got \[\]"),
        (
            [part("test", 1), part("test", 2)],
            r"parts must have one context each, at least one, got \['test', 'test'\]",
        ),
    ],
)
def test_dataset_inputs_rejects_missing_or_repeated_parts(
    parts: list[DataPart], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        dataset_inputs("idx", FINGERPRINT, "/d", parts)


def test_data_part_rejects_an_unknown_context() -> None:
    with pytest.raises(ValueError, match="context must be one of training, validation, test"):
        part("eval", 10)


def test_dataset_digest_needs_a_hex_fingerprint() -> None:
    assert dataset_digest(FINGERPRINT) == FINGERPRINT[:36]
    with pytest.raises(ValueError, match="at least 36 lowercase hex digits, got 'abc'"):
        dataset_digest("abc")
    with pytest.raises(ValueError, match="lowercase hex digits"):
        dataset_digest("X" * 64)


def test_log_inputs_writes_every_part_in_one_call_to_a_real_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = prepare_store(uri, "test")
    other = "0" * 64
    runs = {}
    for fingerprint, parts in (
        (FINGERPRINT, [part("training", 700), part("validation", 100), part("test", 200)]),
        (other, [part("training", 50), part("test", 20)]),
    ):
        with RunRecorder.start(uri, experiment_id, run_name="r", params={}, tags={}) as rec:
            rec.log_inputs(dataset_inputs("idx", fingerprint, str(tmp_path), parts))
        runs[fingerprint] = rec.run_id
    client = MlflowClient(uri)
    logged = client.get_run(runs[FINGERPRINT]).inputs.dataset_inputs
    assert sorted((i.dataset.name, i.tags[0].value, i.dataset.digest) for i in logged) == [
        ("idx/test", "test", FINGERPRINT[:36]),
        ("idx/train", "training", FINGERPRINT[:36]),
        ("idx/validation", "validation", FINGERPRINT[:36]),
    ]
    # MLflow's own search finds the runs on the same data, and the parts by context
    found = client.search_runs([experiment_id], f"dataset.digest = '{FINGERPRINT[:36]}'")
    assert [r.info.run_id for r in found] == [runs[FINGERPRINT]]
    found = client.search_runs([experiment_id], "dataset.context = 'validation'")
    assert [r.info.run_id for r in found] == [runs[FINGERPRINT]]
    found = client.search_runs([experiment_id], "dataset.name = 'idx/train'")
    assert {r.info.run_id for r in found} == set(runs.values())


def test_mlflow_refuses_the_whole_fingerprint_as_digest(tmp_path: Path) -> None:
    """Why the digest is cut to DIGEST_LENGTH: MLflow takes no longer one."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = prepare_store(uri, "test")
    (made,) = dataset_inputs("idx", FINGERPRINT, "/d", [part("test", 3)])
    whole = Dataset(made.dataset.name, FINGERPRINT, "local", made.dataset.source)
    with RunRecorder.start(uri, experiment_id, run_name="r", params={}, tags={}) as rec:
        with pytest.raises(MlflowException, match="'digest' exceeds the maximum length of 36"):
            rec.log_inputs([DatasetInput(whole, made.tags)])
        rec.log_inputs([made])
    assert (
        MlflowClient(uri).get_run(rec.run_id).inputs.dataset_inputs[0].dataset.digest
        == (FINGERPRINT[:DIGEST_LENGTH])
    )


def test_logging_the_same_inputs_again_adds_nothing(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = prepare_store(uri, "test")
    inputs = dataset_inputs("idx", FINGERPRINT, "/d", [part("training", 7), part("test", 3)])
    with RunRecorder.start(uri, experiment_id, run_name="r", params={}, tags={}) as rec:
        rec.log_inputs(inputs)
        rec.log_inputs(inputs)
    assert len(MlflowClient(uri).get_run(rec.run_id).inputs.dataset_inputs) == 2
