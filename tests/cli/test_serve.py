"""``mlflow models serve`` on a run's model answers as ``softmax-lab predict`` does.

A real single run (its model logged as it finishes), real PNG/JPEG files, a real
``mlflow models serve -m runs:/ID/model --env-manager local`` on a free port of 127.0.0.1; the
images are posted as the (m, 784) float32 rows ``predict`` makes of them (``data.images``).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import cli, common_overrides, store_uri
from helpers.servers import clean_env, free_port, stop_group, wait_until_healthy
from PIL import Image

from softmax_lab.data.idx import read_idx
from softmax_lab.data.images import read_inputs

pytestmark = pytest.mark.slow


def test_served_model_answers_invocations_with_predicts_numbers(
    tmp_path: Path, digits_dir: Path
) -> None:
    train = cli(
        "train", *common_overrides(tmp_path, digits_dir), "model=mlp", "model.hidden_dim=24",
        "optim.epochs=2", cwd=tmp_path,
    )  # fmt: skip
    run_id = re.search(r"run (\w+): FINISHED", train.stdout).group(1)  # type: ignore[union-attr]
    files = []
    for i, digit in enumerate(read_idx(digits_dir / "t10k-images-idx3-ubyte.gz")[:6]):
        files.append(tmp_path / f"d{i}.png")
        Image.fromarray(digit).save(files[-1])
        files.append(tmp_path / f"d{i}.jpg")  # dark on light, larger, RGB
        Image.fromarray(255 - digit).resize((90, 120)).convert("RGB").save(files[-1])
    uri = store_uri(tmp_path)
    out = cli(
        "predict", run_id[:8], *map(str, files), "--format", "csv", "--tracking-uri", uri,
        cwd=tmp_path,
    ).stdout  # fmt: skip
    expected = list(csv.DictReader(io.StringIO(out)))

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"runs:/{run_id}/model"]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env={**clean_env(), "MLFLOW_TRACKING_URI": uri},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_healthy(url, server, log_path.read_text, timeout=120)
            X, names = read_inputs(files)
            request = urllib.request.Request(
                f"{url}/invocations",
                data=json.dumps({"inputs": X.tolist()}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                served = json.load(response)["predictions"]
            bad = urllib.request.Request(
                f"{url}/invocations",
                data=json.dumps({"inputs": [[0.5] * 100]}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(bad, timeout=30)
            assert refused.value.code == 400  # the signature's shape is enforced
        finally:
            stop_group(server)
    assert [row["input"] for row in expected] == names
    assert [row["label"] for row in served] == [int(row["label"]) for row in expected]
    P_served = np.array([[row[f"p{j}"] for j in range(10)] for row in served])
    P_cli = np.array([[float(row[f"p{j}"]) for j in range(10)] for row in expected])
    np.testing.assert_allclose(P_served, P_cli, rtol=1e-5, atol=1e-7)  # CSV keeps 6 digits
