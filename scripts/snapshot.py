"""Record what softmax-lab does, through its CLI only, to compare two versions of the code.

Runs a fixed set of commands with the given ``softmax-lab`` executable in a fresh working
directory and store, then writes one JSON file holding, per run: params, every per-epoch metric
(``epoch_seconds`` left out: wall time), the tags that identify the numbers (config hash, data
fingerprint, parameter-array SHA-256s, fused group), and the SHA-256 of every artifact (θ arrays,
config files, pictures); plus every command's output with run ids and seconds masked.

    python scripts/snapshot.py --exe /path/to/before/.venv/bin/softmax-lab --out before.json
    python scripts/snapshot.py --exe .venv/bin/softmax-lab --out after.json
    diff before.json after.json            # empty: same numbers, same bytes, same tables

Uses only the command line and MLflow's client, so it works on any version of the package.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

COMMANDS = [
    ["train", "dataset=fashion_mnist", "optim.epochs=10", "tracking.experiment=reference"],
    ["train", "model=mlp", "model.hidden_dim=64", "optim.epochs=3", "tracking.experiment=mlp"],
    ["train", "-m", "+experiment=demo"],
    [
        "train",
        "-m",
        "model=softmax,mlp",
        "model.hidden_dim=32",
        "optim.lr=0.1,0.5",
        "optim.epochs=2,3",
        "optim.shuffle=true",
        "tracking.experiment=mixed",
    ],
    [
        "train",
        "-m",
        "hydra/launcher=basic",
        "optim.lr=0.1,0.5",
        "optim.epochs=2,3",
        "tracking.experiment=basic",
    ],
    ["compare", "--experiment", "demo"],
    ["compare", "--experiment", "mixed", "--format", "csv"],
    ["compare", "--experiment", "demo", "--where", "optim.lr>0.1", "--top", "3"],
]
# Wall-time values, run ids, dates and times, sweep ids: everything else must match.
MASKS = [
    (re.compile(r"\b[0-9a-f]{32}\b"), "<run-id>"),
    (re.compile(r"\b[0-9a-f]{8}\b"), "<id8>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[/_ T]\d{2}[-:]\d{2}[-:]\d{2}"), "<time>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}"), "<date>"),
    (re.compile(r"\d{2}-\d{2}-\d{2}"), "<time>"),
    (re.compile(r"\b\d+\.\d+ ?s\b"), "<secs>"),
    (re.compile(r"\| +[\d.]+ \|$", re.M), "| <secs> |"),  # per-epoch table: seconds
    (re.compile(r" +\b\d+(\.\d+)?(e-?\d+)?$", re.M), " <num>"),  # compare table: seconds
    (re.compile(r",\d+(\.\d+)?(e-?\d+)?$", re.M), ",<num>"),  # compare CSV: seconds
]


def mask(text: str, work: Path) -> str:
    # log lines name modules and say how long things took: not behaviour
    text = "\n".join(line for line in text.splitlines() if not line.startswith("[20"))
    text = text.replace(str(work), "<work>")
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def sha256(path: Path, work: Path) -> str:
    """Of the file's bytes; a YAML file's with the scratch directory's name masked."""
    data = path.read_bytes()
    if path.suffix == ".yaml":  # the store's path, the sweep's and its parent run's ids
        data = mask(data.decode(), work).encode()
    return hashlib.sha256(data).hexdigest()


def dump_runs(uri: str, work: Path) -> dict[str, object]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    out: dict[str, object] = {}
    for exp in client.search_experiments():
        for run in client.search_runs([exp.experiment_id], max_results=1000):
            tags = run.data.tags
            if tags.get("sl.role") == "sweep":
                key = f"{exp.name}/sweep"
            else:
                key = f"{exp.name}/" + ",".join(
                    f"{k}={v}" for k, v in sorted(run.data.params.items())
                )
            metrics = {
                name: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]
                for name in sorted(run.data.metrics)
                if name != "epoch_seconds"
            }
            kept = {
                k: v.split(" ", 1)[-1] if k == "sl.fused_group" else v  # group id: random
                for k, v in sorted(tags.items())
                if k.startswith(("sl.sha256", "sl.config_hash", "sl.dataset_fingerprint"))
                or k in ("sl.fused", "sl.fused_group", "sl.role", "sl.failure_reason")
                or k == "sl.hydra_job_num"
            }
            with tempfile.TemporaryDirectory() as tmp:
                local = Path(client.download_artifacts(run.info.run_id, "", tmp))
                artifacts = {
                    str(p.relative_to(local)): sha256(p, work)
                    for p in sorted(local.rglob("*"))
                    if p.is_file() and p.suffix != ".csv"
                }
            out[key] = {
                "status": run.info.status,
                "metrics": metrics,
                "tags": kept,
                "artifacts": artifacts,
            }
    return dict(sorted(out.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exe", required=True, help="the softmax-lab executable to record")
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    args = parser.parse_args()
    exe = str(Path(args.exe).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        uri = f"sqlite:///{work}/mlflow.db"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        outputs = []
        for cmd in COMMANDS:
            proc = subprocess.run(
                [exe, *cmd], cwd=work, env=env, capture_output=True, text=True, check=False
            )
            outputs.append(
                {
                    "command": " ".join(cmd),
                    "exit": proc.returncode,
                    "stdout": mask(proc.stdout, work),
                }
            )
            print(f"{proc.returncode}  softmax-lab {' '.join(cmd)}", file=sys.stderr)
        snapshot = {"commands": outputs, "runs": dump_runs(uri, work)}
    args.out.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
