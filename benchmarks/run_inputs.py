"""Benchmark: what logging a run's dataset inputs costs per run, against a one-tag write.

Run: ``python benchmarks/run_inputs.py [--runs 50]``. In one process, against one SQLite store
made by ``prepare_store`` (WAL, as sweeps use it), ``--runs`` runs are opened per variant
(untimed), then each variant writes to its own fresh runs, interleaved run by run:

- ``set_tags (1 tag)``: the baseline, one store transaction of one tag (``RunRecorder.set_tags``);
- ``inputs: train+test``: what every job now does, ``dataset_inputs`` (entities from the
  fingerprint and shapes) and ``RunRecorder.log_inputs`` (one ``log_inputs`` call);
- ``inputs: train+val+test``: the same with a validation part;
- ``from_numpy + log_inputs`` (``--from-numpy``, not used by the jobs): MLflow's own way,
  ``mlflow.data.from_numpy`` on the arrays, which hashes them for a digest, per part.

Printed: median, min and max ms per run of each, wall and CPU time, and the ratio to the
baseline's median; the first run's inputs (which also create the experiment's dataset rows)
are timed apart.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mlflow
from _common import benchmark_data, report
from mlflow.entities import DatasetInput, InputTag

from softmax_lab.tracking.recorder import RunRecorder
from softmax_lab.tracking.run_inputs import DataPart, dataset_inputs
from softmax_lab.tracking.store import prepare_store

FINGERPRINT = "e065f99e7ed183c1435e60369cf227ba9d7f52957b9335dd875c3832c5f38071"
SWEEP_OVERHEAD_MS = 96.0  # README: the fused sweep's harness overhead per job (0.096 s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="runs per variant (median)")
    parser.add_argument("--from-numpy", action="store_true", help="also time from_numpy")
    args = parser.parse_args()
    name, (X, y, X_test, y_test) = benchmark_data()
    train = DataPart("training", X.shape, "float32", y.shape, "uint8")
    test = DataPart("test", X_test.shape, "float32", y_test.shape, "uint8")
    val = DataPart("validation", (5000, X.shape[1]), "float32", (5000,), "uint8")
    source = "/usr/share/datasets/fashion-mnist"

    def from_numpy() -> list[DatasetInput]:
        return [
            DatasetInput(
                mlflow.data.from_numpy(
                    features, targets=labels, source=source, name=part
                )._to_mlflow_entity(),
                [InputTag("mlflow.data.context", part)],
            )
            for part, features, labels in (("training", X, y), ("test", X_test, y_test))
        ]

    writes: dict[str, Callable[[RunRecorder], None]] = {
        "set_tags (1 tag)": lambda rec: rec.set_tags({"sl.bench": "x"}),
        "inputs: train+test": lambda rec: rec.log_inputs(
            dataset_inputs(name, FINGERPRINT, source, [train, test])
        ),
        "inputs: train+val+test": lambda rec: rec.log_inputs(
            dataset_inputs(name, FINGERPRINT, source, [train, val, test])
        ),
    }
    if args.from_numpy:
        writes["from_numpy + log_inputs"] = lambda rec: rec.log_inputs(from_numpy())
    with tempfile.TemporaryDirectory(prefix="softmax-lab-bench-") as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        experiment_id = prepare_store(uri, "bench")

        def open_run() -> RunRecorder:
            return RunRecorder.start(uri, experiment_id, run_name="r", params={}, tags={})

        first = open_run()  # the experiment's first inputs also create its dataset rows
        t0 = time.perf_counter()
        writes["inputs: train+test"](first)
        first_ms = (time.perf_counter() - t0) * 1e3
        runs = {label: [open_run() for _ in range(args.runs)] for label in writes}
        times: dict[str, list[float]] = {label: [] for label in writes}
        cpu: dict[str, list[float]] = {label: [] for label in writes}
        for i in range(args.runs):  # interleaved, so machine load hits every variant alike
            for label, write in writes.items():
                t0, c0 = time.perf_counter(), time.process_time()
                write(runs[label][i])
                cpu[label].append(time.process_time() - c0)
                times[label].append(time.perf_counter() - t0)
    print(f"{args.runs} runs per variant, one SQLite store, data {name} (shapes only):")
    print(f"  first run's inputs (creating the dataset rows): {first_ms:.1f} ms")
    print("wall time:")
    report(times, "set_tags (1 tag)")
    print("CPU time of this process (what competes with a fused sweep's training):")
    report(cpu, "set_tags (1 tag)")
    extra = statistics.median(times["inputs: train+test"]) * 1e3
    print(
        f"  a job's inputs: {extra:.1f} ms per run, {extra / SWEEP_OVERHEAD_MS:.0%} of the fused "
        f"sweep's {SWEEP_OVERHEAD_MS:.0f} ms harness overhead per job"
    )


if __name__ == "__main__":
    main()
