from __future__ import annotations

import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
from helpers.pictures import history

from softmax_lab.pictures import confusion, curves, templates

# ---------------------------------------------------------------------------------------------
# determinism and isolation


def test_same_inputs_give_the_same_bytes_and_different_inputs_differ(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    theta_a, theta_b = rng.standard_normal((784, 10)), 3 * rng.standard_normal((784, 10))
    cm_a, cm_b = rng.integers(0, 100, (10, 10)), rng.integers(0, 5000, (10, 10))
    draw_curves, draw_templates, draw_confusion = (
        curves.plot_curves,
        templates.plot_templates,
        confusion.plot_confusion,
    )
    pairs = {
        "curves": (partial(draw_curves, history(10)), partial(draw_curves, history(3))),
        "theta": (partial(draw_templates, theta_a), partial(draw_templates, theta_b)),
        "cm": (partial(draw_confusion, cm_a), partial(draw_confusion, cm_b)),
    }
    for name, (draw_a, draw_b) in pairs.items():
        first = draw_a(tmp_path / f"{name}_a1.png").read_bytes()
        other = draw_b(tmp_path / f"{name}_b.png").read_bytes()
        again = draw_a(tmp_path / f"{name}_a2.png").read_bytes()
        assert again == first, name
        assert other != first, name


def test_run_plots_never_imports_matplotlib(tmp_path: Path) -> None:
    code = f"""
import sys
import numpy as np
from softmax_lab.core import loss
from softmax_lab.pictures import confusion, curves, templates
out = {str(tmp_path)!r}
curves.plot_curves([{{"epoch": 1, "train_loss": 1, "train_error": 1, "test_loss": 1,
                         "test_error": 1}}], out + "/c.png")
templates.plot_templates(np.ones((784, 3)), out + "/t.png")
confusion.plot_confusion(loss.confusion_matrix([0, 1], [1, 1], 2), out + "/m.png")
assert "matplotlib" not in sys.modules, "matplotlib imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
