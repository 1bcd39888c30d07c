"""``softmax-lab predict`` and ``register``, and the models a sweep and a single run log.

One store per module: a 2-job sweep (tracking.log_model=single: only its best run gets a model
at the end), a single mlp run (its model logged as it finishes) and a failed run. Every command
is a real ``softmax-lab`` process; images are real PNG/JPEG files written by Pillow.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import cli, common_overrides, run_command, store_uri
from helpers.servers import clean_env
from mlflow import MlflowClient
from PIL import Image

from softmax_lab.data.idx import read_idx

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass(frozen=True)
class Store:
    root: Path
    uri: str
    digits: Path
    sweep_best: str  # run id of the sweep's best job (has a model)
    sweep_other: str  # the other job (no model until asked)
    mlp: str  # a single mlp run (model logged at close)
    failed: str  # a run that diverged (FAILED, no params)


def _run_ids(uri: str) -> dict[str, dict[str, str]]:
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return {
        r.info.run_id: {"status": r.info.status, "name": r.info.run_name or "", **r.data.tags}
        for r in client.search_runs(experiments)
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> Store:
    root = tmp_path_factory.mktemp("predict")
    uri = store_uri(root)
    common = common_overrides(root, digits_dir)
    sweep = cli("train", "-m", *common, "optim.lr=0.01,0.2", "optim.epochs=2", cwd=root)
    assert "model of the best run: runs:/" in sweep.stdout
    mlp = cli("train", *common, "model=mlp", "model.hidden_dim=32", "optim.epochs=2", cwd=root)
    mlp_id = re.search(r"run (\w+): FINISHED", mlp.stdout)
    assert mlp_id is not None
    failed = cli(
        "train", *common, "model=mlp", "model.hidden_dim=16", "optim.lr=1e30", cwd=root,
        check=False,
    )  # fmt: skip
    assert failed.returncode != 0
    runs = _run_ids(uri)
    jobs = {i: t for i, t in runs.items() if t.get("sl.sweep_id") and t.get("sl.role") == "job"}
    client = MlflowClient(uri)
    with_model = [i for i in jobs if client.get_run(i).outputs.model_outputs]
    assert len(with_model) == 1, "a sweep logs its best run's model only"
    (other,) = set(jobs) - set(with_model)
    (failed_id,) = [i for i, t in runs.items() if t["status"] == "FAILED"]
    return Store(root, uri, digits_dir, with_model[0], other, mlp_id.group(1), failed_id)


def predict(store: Store, *args: str, check: bool = True) -> tuple[int, str, str]:
    proc = cli("predict", *args, "--tracking-uri", store.uri, cwd=store.root, check=check)
    return proc.returncode, proc.stdout, proc.stderr


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_sweeps_best_run_is_the_one_with_the_lowest_test_error(store: Store) -> None:
    client = MlflowClient(store.uri)
    best = client.get_run(store.sweep_best).data.metrics["test/error"]
    other = client.get_run(store.sweep_other).data.metrics["test/error"]
    assert best <= other


def test_predict_classifies_idx_images_and_reports_the_error_against_labels(
    store: Store,
) -> None:
    images = store.digits / "t10k-images-idx3-ubyte.gz"
    labels = store.digits / "t10k-labels-idx1-ubyte.gz"
    _, out, _ = predict(store, store.sweep_best[:8], str(images), "--labels", str(labels))
    lines = out.strip().splitlines()
    assert len(lines) == 201  # 200 images, then the summary
    assert re.fullmatch(
        r"t10k-images-idx3-ubyte\.gz\[0\] +label \d  true \d  "
        r"\(\d 0\.\d{3}, \d 0\.\d{3}, \d 0\.\d{3}\)",
        lines[0],
    )
    wrong = int(re.match(r"(\d+) of 200 wrong", lines[-1]).group(1))  # type: ignore[union-attr]
    client = MlflowClient(store.uri)
    logged = client.get_run(store.sweep_best).data.metrics["test/error"]
    assert wrong / 200 == pytest.approx(logged)  # the model is the run's θ: same test error


def test_predict_csv_has_probabilities_that_sum_to_one_and_agree_with_the_label(
    store: Store,
) -> None:
    images = store.digits / "t10k-images-idx3-ubyte.gz"
    _, out, _ = predict(store, f"runs:/{store.mlp}/model", str(images), "--format", "csv")
    rows = _csv(out)
    assert len(rows) == 200
    P = np.array([[float(r[f"p{j}"]) for j in range(10)] for r in rows])
    np.testing.assert_allclose(P.sum(axis=1), 1, atol=1e-4)
    assert [int(r["label"]) for r in rows] == P.argmax(axis=1).tolist()


def test_pictures_of_any_size_and_background_are_classified_like_their_mnist_rows(
    store: Store, tmp_path: Path
) -> None:
    X = read_idx(store.digits / "t10k-images-idx3-ubyte.gz")[:12]
    files = []
    for i, digit in enumerate(X):
        png = tmp_path / f"digit{i}.png"
        Image.fromarray(digit).save(png)  # 28×28, white on black as MNIST
        jpeg = tmp_path / f"paper{i}.jpg"  # black ink on white paper, 10× larger, RGB
        Image.fromarray(255 - digit).resize((280, 300), Image.Resampling.BICUBIC).convert(
            "RGB"
        ).save(jpeg, quality=95)
        files += [str(png), str(jpeg)]
    npy = tmp_path / "rows.npy"
    np.save(npy, X)  # uint8 (12, 28, 28)
    _, out, _ = predict(store, store.sweep_best, *files, str(npy), "--format", "csv")
    rows = _csv(out)
    assert [r["input"] for r in rows[:2]] == ["digit0.png", "paper0.jpg"]
    png_labels = [r["label"] for r in rows[0:24:2]]
    jpeg_labels = [r["label"] for r in rows[1:24:2]]
    npy_labels = [r["label"] for r in rows[24:]]
    assert [r["input"] for r in rows[24:26]] == ["rows.npy[0]", "rows.npy[1]"]
    # pictures are re-centred as MNIST was made, so a few may move; most must not
    assert sum(a == b for a, b in zip(png_labels, npy_labels, strict=True)) >= 10
    assert sum(a == b for a, b in zip(jpeg_labels, png_labels, strict=True)) >= 10


def test_predict_logs_a_model_for_a_finished_run_that_has_none(store: Store) -> None:
    client = MlflowClient(store.uri)
    assert not client.get_run(store.sweep_other).outputs.model_outputs
    npy = store.root / "one.npy"
    np.save(npy, np.zeros(784, np.float32))
    code, out, _ = predict(store, store.sweep_other, str(npy))
    assert code == 0 and out.startswith("one.npy  label ")
    assert client.get_run(store.sweep_other).outputs.model_outputs


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (np.zeros((3, 100), np.float32), "bad.npy", r"expected images of shape .* got \(3, 100\)"),
        (np.full(784, 2.0, np.float32), "big.npy", r"must lie in \[0, 1\].*divide 0-255"),
        (b"not a picture at all", "x.png", "not an image Pillow can read"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "cut.png", "unreadable image|not an image"),
        ("blank", "blank.png", "one flat grey level"),
        ("labels", "t10k-labels.gz", r"expected IDX images .* \(a labels file\?\)"),
        (None, "missing.png", "no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    store: Store, tmp_path: Path, content: object, name: str, message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "blank":
        Image.new("L", (40, 40), 200).save(path)
    elif content == "labels":
        path.write_bytes((store.digits / "t10k-labels-idx1-ubyte.gz").read_bytes())
    code, out, err = predict(store, store.sweep_best, str(path), check=False)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("softmax-lab predict: ")
    assert re.search(message, err), err


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("failed", r"is FAILED, not FINISHED: it has no trained model"),
        ("0123456789abcdef0123456789abcdef", "not found"),
        ("models:/nobody@champion", "cannot load model models:/nobody@champion"),
    ],
)
def test_a_model_that_cannot_be_had_is_one_line_and_exit_2(
    store: Store, model: str, message: str
) -> None:
    npy = store.root / "one.npy"
    np.save(npy, np.zeros(784, np.float32))
    code, _, err = predict(
        store, store.failed if model == "failed" else model, str(npy), check=False
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err


def test_register_then_predict_from_the_registry_by_alias(store: Store) -> None:
    done = cli(
        "register", store.mlp[:8], "digits-mlp", "--alias", "champion",
        "--tracking-uri", store.uri, cwd=store.root,
    )  # fmt: skip
    assert "registered models:/digits-mlp/1 as @champion" in done.stdout
    client = MlflowClient(store.uri)
    version = client.get_model_version_by_alias("digits-mlp", "champion")
    assert version.run_id == store.mlp
    test_error = client.get_run(store.mlp).data.metrics["test/error"]
    assert f"test/error {test_error:.5g}" in version.description
    images = str(store.digits / "t10k-images-idx3-ubyte.gz")
    _, by_alias, _ = predict(store, "models:/digits-mlp@champion", images, "--format", "csv")
    _, by_run, _ = predict(store, store.mlp, images, "--format", "csv")
    assert by_alias == by_run


def test_compare_register_registers_the_best_run_by_the_sort_key(store: Store) -> None:
    out = cli(
        "compare", "--experiment", "t", "--where", "model.name=softmax", "--register",
        "digits-best", "--alias", "champion", "--tracking-uri", store.uri, cwd=store.root,
    ).stdout  # fmt: skip
    assert "registered models:/digits-best/1 as @champion" in out
    version = MlflowClient(store.uri).get_model_version_by_alias("digits-best", "champion")
    assert version.run_id == store.sweep_best


def test_predict_plot_draws_the_images_with_their_labels(store: Store, tmp_path: Path) -> None:
    images = str(store.digits / "t10k-images-idx3-ubyte.gz")
    labels = str(store.digits / "t10k-labels-idx1-ubyte.gz")
    png = tmp_path / "p.png"
    _, out, _ = predict(store, store.sweep_best, images, "--labels", labels, "--plot", str(png))
    assert f"wrote {png}" in out
    with Image.open(png) as picture:
        assert picture.format == "PNG" and picture.width >= 8 * 84


def test_loaded_in_a_fresh_process_the_model_predicts_what_predict_prints(
    store: Store, tmp_path: Path
) -> None:
    X = read_idx(store.digits / "t10k-images-idx3-ubyte.gz")[:5]
    np.save(tmp_path / "x.npy", X)
    code = (
        "import mlflow, numpy as np, sys\n"
        f"mlflow.set_tracking_uri({store.uri!r})\n"
        f"m = mlflow.pyfunc.load_model('runs:/{store.mlp}/model')\n"
        f"X = np.load({str(tmp_path / 'x.npy')!r}).reshape(5, 784).astype(np.float32) / 255\n"
        "print(m.metadata.signature.inputs.to_dict())\n"
        "m.predict(X).to_csv(sys.stdout, index=False, float_format='%.6g')\n"
    )
    proc = run_command([sys.executable, "-c", code], cwd=tmp_path, env=clean_env())
    schema, _, frame = proc.stdout.partition("\n")
    assert "'float32'" in schema and "(-1, 784)" in schema
    _, out, _ = predict(store, store.mlp, str(tmp_path / "x.npy"), "--format", "csv")
    expected = "\n".join(",".join(line.split(",")[1:]) for line in out.strip().splitlines())
    assert frame.strip() == expected
