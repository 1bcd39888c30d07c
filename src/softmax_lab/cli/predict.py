"""``softmax-lab predict MODEL INPUT…``: classify images with a run's (or a registered) model.

MODEL is a run id or a unique prefix of one, ``runs:/<id>/model`` or ``models:/NAME@ALIAS``;
a FINISHED run without a logged model gets one first (``tracking.models.ensure_model``).
INPUT is any mix of pictures, IDX image files and ``.npy`` arrays (``data.images``). Prints one
line per image (its name, the predicted label, the three likeliest classes), or CSV with every
class probability. The model is the MLflow pyfunc model itself, so the numbers are those
``mlflow models serve`` answers with.

Exit codes: 0 done; 2 what was given cannot be used (a run without a model, an unreadable
image, a wrong shape), as one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from softmax_lab.cli.console import report_input_error
from softmax_lab.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["run_predict"]


def _lines(names: list[str], frame: pd.DataFrame, true: np.ndarray | None) -> list[str]:
    P = frame[[c for c in frame.columns if c != "label"]].to_numpy()  # (m, k)
    width = max(len(n) for n in names)
    lines = []
    for i, name in enumerate(names):
        top3 = np.argsort(-P[i], kind="stable")[:3]
        likeliest = ", ".join(f"{j} {P[i, j]:.3f}" for j in top3)
        truth = "" if true is None else f"  true {int(true[i])}"
        lines.append(f"{name:<{width}}  label {int(frame['label'].iloc[i])}{truth}  ({likeliest})")
    return lines


def _read_labels(path: str, m: int) -> np.ndarray:
    from softmax_lab.data.idx import read_idx

    labels = read_idx(path, expect_ndim=1)
    if labels.shape != (m,):
        raise InputError(f"--labels {path}: {labels.shape[0]} labels for {m} images")
    return labels


def run_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from softmax_lab.data.images import read_inputs
    from softmax_lab.tracking.models import load_pyfunc

    try:
        X, names = read_inputs(args.inputs)  # the cheap checks before MLflow loads
        true = None if args.labels is None else _read_labels(args.labels, X.shape[0])
        model = load_pyfunc(args.tracking_uri, args.model)
    except InputError as err:
        return report_input_error(err, command="predict")
    frame = model.predict(X)
    assert isinstance(frame, pd.DataFrame)  # HypothesisModel.predict's output
    if args.format == "csv":
        frame.insert(0, "input", names)
        if true is not None:
            frame.insert(1, "true", true.astype(np.int64))
        frame.to_csv(sys.stdout, index=False, float_format="%.6g")
    else:
        print("\n".join(_lines(names, frame, true)))
        if true is not None:
            errors = int((frame["label"].to_numpy() != true).sum())
            print(f"{errors} of {len(names)} wrong ({errors / len(names):.2%})")
    if args.plot is not None:
        from softmax_lab.pictures.predictions import draw_predictions

        P = frame[[f"p{j}" for j in range(10)]].to_numpy()
        path = draw_predictions(
            Path(args.plot), X, frame["label"].to_numpy(), P.max(axis=1), names, true=true
        )
        print(f"wrote {path}", file=sys.stderr if args.format == "csv" else sys.stdout)
    return 0
