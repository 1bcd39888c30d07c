from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from helpers.pictures import (
    assert_never_imports_matplotlib,
    assert_same_bytes_for_same_input,
    history,
    png_size,
)

from softmax_lab.core import loss
from softmax_lab.pictures import confusion, curves, run_pictures, templates


def test_draw_run_pictures_writes_the_three_pngs_into_a_new_directory(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((784, 16)).astype(np.float32)
    cm = loss.confusion_matrix(rng.integers(0, 10, 100), rng.integers(0, 10, 100), 10)
    plot_dir = tmp_path / "run" / "plots"
    paths = run_pictures.draw_run_pictures(
        plot_dir,
        history=history(3),
        templates=W1,
        template_titles=[f"h{i}" for i in range(16)],
        template_file="W1.png",
        confusion=cm,
    )
    assert paths == [plot_dir / "curves.png", plot_dir / "W1.png", plot_dir / "confusion.png"]
    assert png_size(paths[0]) == (1000, 400) and png_size(paths[2]) == (600, 520)
    # the same picture as plot_templates draws of 16 columns, 8 to a row
    alone = templates.plot_templates(
        W1, tmp_path / "W1.png", titles=[f"h{i}" for i in range(16)], ncols=8
    )
    assert paths[1].read_bytes() == alone.read_bytes()


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
    assert_same_bytes_for_same_input(pairs, tmp_path)


def test_drawing_a_runs_pictures_never_imports_matplotlib(tmp_path: Path) -> None:
    assert_never_imports_matplotlib(f"""
import numpy as np
from softmax_lab.core import loss
from softmax_lab.pictures import confusion, curves, templates
out = {str(tmp_path)!r}
curves.plot_curves([{{"epoch": 1, "train_loss": 1, "train_error": 1, "test_loss": 1,
                         "test_error": 1}}], out + "/c.png")
templates.plot_templates(np.ones((784, 3)), out + "/t.png")
confusion.plot_confusion(loss.confusion_matrix([0, 1], [1, 1], 2), out + "/m.png")
""")
