from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from helpers.pictures import (
    assert_never_imports_matplotlib,
    assert_same_bytes_for_same_input,
    near,
    pixels,
    png_size,
)
from numpy.typing import NDArray

from softmax_lab.pictures import study
from softmax_lab.pictures.raster import TAB10
from softmax_lab.pictures.study import TrialPoint

IMPORTANCES = {"optim.lr": 0.7, "optim.epochs": 0.2, "optim.batch_size": 0.1}
RED, BLUE, GREY = TAB10[3], TAB10[0], (128, 128, 128)


def made_up_study(n: int = 30, seed: int = 0) -> list[TrialPoint]:
    """n trials of lr (log-uniform 1e-3 … 1), batch size (10 … 1000) and epochs (1 … 20), a
    quarter of them pruned after the 6th, trial 13 failed."""
    rng = np.random.default_rng(seed)
    trials = []
    for k in range(n):
        lr, batch = float(10 ** rng.uniform(-3, 0)), int(rng.choice([10, 100, 1000]))
        epochs = int(rng.integers(1, 21))
        error = 0.08 + 0.05 * abs(math.log10(lr) + 1) + 0.08 / epochs + rng.normal(0, 0.004)
        state, trained = "COMPLETE", epochs
        if k > 5 and rng.random() < 0.25:
            state, trained = "PRUNED", int(rng.integers(1, max(2, epochs)))
        params: dict[str, float | int | str | bool | None] = {
            "optim.lr": lr,
            "optim.batch_size": batch,
            "optim.epochs": epochs,
        }
        trials.append(TrialPoint(k, state, float(error), params, trained))
    if n > 13:
        trials[13] = TrialPoint(13, "FAIL", None, trials[13].params, 0)
    return trials


def draw(tmp_path: Path, trials: list[TrialPoint], **kwargs: object) -> list[Path]:
    options: dict[str, object] = {
        "objective": "val/error",
        "direction": "minimize",
        "importances": None,
        "log_params": (),
    }
    options.update(kwargs)
    return study.draw_study_pictures(tmp_path, trials, **options)  # type: ignore[arg-type]


def trial(
    number: int, value: float | None, state: str = "COMPLETE", **params: object
) -> TrialPoint:
    return TrialPoint(number, state, value, dict(params), 5)  # type: ignore[arg-type]


def parallel_width(axes: int) -> int:
    return max(study.PARALLEL_LEFT + study.PARALLEL_SPACING * (axes - 1) + 180, 640)


# ---------------------------------------------------------------------------------------------
# files and sizes


def test_draw_study_pictures_writes_the_three_pngs(tmp_path: Path) -> None:
    paths = draw(
        tmp_path / "study", made_up_study(), importances=IMPORTANCES, log_params={"optim.lr"}
    )
    assert [p.name for p in paths] == [
        "optimisation_history.png",
        "parallel_coordinates.png",
        "param_importances.png",
    ]
    assert all(p.parent == tmp_path / "study" for p in paths)
    assert png_size(paths[0]) == (900, 500)
    assert png_size(paths[1]) == (parallel_width(5), 500)  # 3 params, epochs trained, objective
    assert png_size(paths[2]) == (760, 3 * 30 + 115)
    assert sorted(p.name for p in (tmp_path / "study").iterdir()) == sorted(p.name for p in paths)


def test_sizes_depend_only_on_the_input_s_shape(tmp_path: Path) -> None:
    a = draw(tmp_path / "a", made_up_study(seed=1), importances=IMPORTANCES)
    b = draw(tmp_path / "b", made_up_study(seed=2), importances={"x": 0.5, "y": 0.2, "z": 0.3})
    assert [png_size(p) for p in a] == [png_size(p) for p in b]


def test_same_inputs_give_the_same_bytes_and_different_inputs_differ(tmp_path: Path) -> None:
    trials, other = made_up_study(seed=0), made_up_study(seed=1)
    kw = {"objective": "val/error", "direction": "minimize"}
    pairs = {
        "history": (
            lambda p: study.plot_optimisation_history(trials, p, **kw),
            lambda p: study.plot_optimisation_history(other, p, **kw),
        ),
        "parallel": (
            lambda p: study.plot_parallel_coordinates(trials, p, **kw, log_params=["optim.lr"]),
            lambda p: study.plot_parallel_coordinates(other, p, **kw, log_params=["optim.lr"]),
        ),
        "importances": (
            lambda p: study.plot_param_importances(IMPORTANCES, p, objective="e", complete=9),
            lambda p: study.plot_param_importances({"a": 1.0}, p, objective="e", complete=9),
        ),
    }
    assert_same_bytes_for_same_input(pairs, tmp_path)


def test_drawing_a_study_never_imports_matplotlib_optuna_or_mlflow(tmp_path: Path) -> None:
    assert_never_imports_matplotlib(
        f"""
from pathlib import Path
from softmax_lab.pictures.study import TrialPoint, draw_study_pictures
trials = [
    TrialPoint(0, "COMPLETE", 0.2, {{"lr": 0.1}}, 3), TrialPoint(1, "PRUNED", 0.3, {{"lr": 1}}, 1)
]
draw_study_pictures(Path({str(tmp_path)!r}), trials, objective="e", direction="minimize",
                    importances={{"lr": 1.0}}, log_params=["lr"])
assert "optuna" not in sys.modules and "mlflow" not in sys.modules
""".replace("from pathlib", "import sys\nfrom pathlib")
    )


# ---------------------------------------------------------------------------------------------
# the optimisation history


def history(tmp_path: Path, trials: list[TrialPoint], direction: str = "minimize") -> NDArray:
    path = study.plot_optimisation_history(
        trials, tmp_path / "h.png", objective="val/error", direction=direction
    )
    return pixels(path)


def box_centre() -> tuple[int, int]:
    """Where the middle of three trials 0, 1, 2 valued 0, 0.5, 1 sits: the axes' centre, as
    their limits have equal margins."""
    x0, y0, x1, y1 = study.HISTORY_BOX
    return round((x0 + x1) / 2), round((y0 + y1) / 2)


def test_history_draws_a_pruned_trial_hollow_and_grey_a_complete_one_filled(
    tmp_path: Path,
) -> None:
    xc, yc = box_centre()
    for state in ("COMPLETE", "PRUNED"):
        trials = [trial(0, 0.0), trial(1, 0.5, state), trial(2, 1.0)]
        around = history(tmp_path, trials)[yc - 7 : yc + 8, xc - 7 : xc + 8]  # the marker
        if state == "COMPLETE":
            assert near(around[6:9, 6:9], BLUE, tol=8).all()  # filled
        else:
            assert not near(around, BLUE, tol=60).any()
            assert near(around, GREY, tol=8).sum() > 15  # a grey ring …
            assert not near(around[7, 7], GREY, tol=60)  # … hollow


def test_history_best_so_far_line_steps_down_at_each_new_best(tmp_path: Path) -> None:
    # values 0.5, 0, 1 at trials 0, 1, 2: the best is 0.5 until trial 1, then 0
    rgb = history(tmp_path, [trial(0, 0.5), trial(1, 0.0), trial(2, 1.0)])
    x0, y0, x1, y1 = study.HISTORY_BOX
    red = near(rgb, RED, tol=20)
    assert red[y0:y1, x0:x1].sum() > 200
    xc, yc = box_centre()
    assert abs(np.flatnonzero(red[:, xc - 30]).mean() - yc) <= 2  # before trial 1: at 0.5
    assert np.flatnonzero(red[:, xc + 30]).mean() > y1 - 30  # after: at 0, near the bottom


def test_history_best_so_far_follows_the_direction(tmp_path: Path) -> None:
    rgb = history(tmp_path, [trial(0, 0.5), trial(1, 0.0), trial(2, 1.0)], "maximize")
    red = near(rgb, RED, tol=20)
    xc, yc = box_centre()
    assert abs(np.flatnonzero(red[:, xc + 30]).mean() - yc) <= 2  # still 0.5 after trial 1


def test_history_marks_failed_and_nan_trials_along_the_x_axis(tmp_path: Path) -> None:
    xc, _ = box_centre()
    y1 = study.HISTORY_BOX[3]
    for middle in (trial(1, None, "FAIL"), trial(1, math.nan), trial(1, math.inf, "PRUNED")):
        rgb = history(tmp_path, [trial(0, 0.0), middle, trial(2, 1.0)])
        assert near(rgb[y1 - 14 : y1, xc - 7 : xc + 8], (0, 0, 0), tol=40).sum() > 10, middle


def test_history_of_only_pruned_trials_has_no_best_so_far_line(tmp_path: Path) -> None:
    rgb = history(tmp_path, [trial(0, 0.3, "PRUNED"), trial(1, 0.2, "PRUNED")])
    x0, y0, x1, y1 = study.HISTORY_BOX
    assert not near(rgb[y0:y1, x0:x1], RED, tol=20).any()
    assert near(rgb[y0:y1, x0:x1], GREY, tol=8).sum() > 30


# ---------------------------------------------------------------------------------------------
# the parallel coordinates


def parallel(tmp_path: Path, trials: list[TrialPoint], **kwargs: object) -> NDArray:
    path = study.plot_parallel_coordinates(
        trials,
        tmp_path / "p.png",
        objective="val/error",
        direction=str(kwargs.pop("direction", "minimize")),
        **kwargs,  # type: ignore[arg-type]
    )
    return pixels(path)


def line_rows(rgb: NDArray, colour: tuple[int, int, int], x: int) -> float:
    """The mean row of ``colour`` in the 3 columns right of x (where a line leaves an axis)."""
    rows = np.flatnonzero(near(rgb[:, x + 2 : x + 5], colour, tol=25).any(axis=1))
    assert rows.size, colour
    return float(rows.mean())


def height(u: float) -> float:
    """The row of height u on an axis (0 bottom, 1 top)."""
    top, bottom = study.PARALLEL_Y
    return bottom - u * (bottom - top)


def lines_colour(value: float, lo: float, hi: float) -> tuple[int, int, int]:
    r, g, b = study.LINES[min(int((value - lo) / (hi - lo) * 256), 255)].tolist()
    return r, g, b


def test_parallel_log_axis_spaces_decades_evenly(tmp_path: Path) -> None:
    trials = [trial(0, 0.1, lr=0.001), trial(1, 0.2, lr=0.01), trial(2, 0.3, lr=1.0)]
    mid = lines_colour(0.2, 0.1, 0.3)
    x = study.PARALLEL_LEFT
    # log10: −3, −2, 0 over [−3.15, 0.15]; linear: 0.01 is next to 0.001
    logged = line_rows(parallel(tmp_path, trials, log_params=["lr"]), mid, x)
    assert logged == pytest.approx(height((-2 + 3.15) / 3.3), abs=8)
    linear = line_rows(parallel(tmp_path, trials), mid, x)
    assert linear == pytest.approx(height((0.01 + 0.04895) / 1.0999), abs=8)
    rows = [
        line_rows(parallel(tmp_path, trials, log_params=["lr"]), lines_colour(v, 0.1, 0.3), x)
        for v in (0.1, 0.2, 0.3)
    ]
    assert rows[0] > rows[1] > rows[2]  # 0.001 lowest, 1 highest


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_parallel_colours_the_best_trial_darkest(tmp_path: Path, direction: str) -> None:
    trials = [trial(0, 0.1, p=0.0), trial(1, 0.9, p=1.0)]
    rgb = parallel(tmp_path, trials, direction=direction)
    dark = line_rows(rgb, tuple(study.LINES[0].tolist()), study.PARALLEL_LEFT)
    best_p = 0.0 if direction == "minimize" else 1.0
    assert dark == pytest.approx(height(0.045 + 0.91 * best_p), abs=8)


def test_parallel_draws_pruned_trials_fainter(tmp_path: Path) -> None:
    trials = [trial(0, 0.1, p=0.0), trial(1, 0.3, "PRUNED", p=1.0)]
    rgb = parallel(tmp_path, trials)
    between = rgb[:, study.PARALLEL_LEFT + 5 : study.PARALLEL_LEFT + study.PARALLEL_SPACING - 60]
    worst = tuple(study.LINES[255].tolist())
    faint = tuple(np.round(study.LINES[255] * 0.4 + 255 * 0.6).astype(int).tolist())
    assert near(between, faint, tol=6).sum() > 50
    assert not near(between, worst, tol=6).any()
    # with a pruned trial, an axis of the epochs trained comes before the objective's
    assert rgb.shape[1] == parallel_width(3)


def test_parallel_orders_axes_by_importance_when_given(tmp_path: Path) -> None:
    trials = [trial(0, 0.1, a=0.0, b=1.0), trial(1, 0.9, a=1.0, b=0.0)]
    best = tuple(study.LINES[0].tolist())
    x = study.PARALLEL_LEFT  # the first axis: a, or b when b matters more
    as_given = line_rows(parallel(tmp_path, trials), best, x)
    by_importance = line_rows(parallel(tmp_path, trials, importances={"a": 0.1, "b": 0.9}), best, x)
    assert as_given > by_importance  # a = 0 at the bottom, then b = 1 at the top


def test_parallel_of_categorical_bool_and_none_params(tmp_path: Path) -> None:
    trials = [
        trial(0, 0.1, flag=True, hidden=None, name="mlp"),
        trial(1, 0.2, flag=False, hidden=100, name="softmax"),
        trial(2, 0.3, flag=True, hidden=400, name="mlp"),
    ]
    rgb = parallel(tmp_path, trials)
    assert rgb.shape[:2] == (500, parallel_width(4))
    # flag: False, True at heights 1/4, 3/4; the best trial has True
    dark = line_rows(rgb, tuple(study.LINES[0].tolist()), study.PARALLEL_LEFT)
    assert dark == pytest.approx(height(0.75), abs=8)


# ---------------------------------------------------------------------------------------------
# the axes


def test_parameter_axis_orders_categories_numbers_text_then_none() -> None:
    axis = study.parameter_axis("hidden", [None, 400, "wide", 100, True, math.nan, 100])
    assert axis.labels == ["100", "400", "True", "wide", "None"]
    np.testing.assert_allclose(axis.ticks, (np.arange(5) + 0.5) / 5)
    np.testing.assert_allclose(axis.at, [0.9, 0.3, 0.7, 0.1, 0.5, np.nan, 0.1])


def test_parameter_axis_of_bools() -> None:
    axis = study.parameter_axis("flag", [True, False, True])
    assert axis.labels == ["False", "True"]
    np.testing.assert_allclose(axis.at, [0.75, 0.25, 0.75])


def test_parameter_axis_of_one_value_puts_it_in_the_middle() -> None:
    for values in ([0.1, 0.1], [3, 3], ["sgd"], [0.0]):
        np.testing.assert_allclose(study.parameter_axis("p", values).at, 0.5)
    np.testing.assert_allclose(study.parameter_axis("p", [0.01, 0.01], log=True).at, 0.5)


def test_parameter_axis_treats_nan_and_inf_as_missing() -> None:
    axis = study.parameter_axis("lr", [0.1, math.nan, math.inf, -math.inf, 0.2])
    assert np.isnan(axis.at[1:4]).all() and np.isfinite(axis.at[[0, 4]]).all()
    assert np.isnan(study.parameter_axis("lr", [math.nan]).at).all()


def test_parameter_axis_log_ticks_are_decades() -> None:
    axis = study.parameter_axis("lr", [0.001, 1.0], log=True)
    assert axis.labels == ["0.001", "0.01", "0.1", "1"]
    np.testing.assert_allclose(np.diff(axis.ticks), 1 / 3.3)


def test_parameter_axis_log_within_a_decade_has_ticks() -> None:
    assert len(study.parameter_axis("lr", [0.02, 0.03], log=True).labels) >= 2


def test_parameter_axis_rejects_log_of_a_value_not_above_zero() -> None:
    with pytest.raises(ValueError, match=r"log_params names 'lr', but it takes the value 0: a log"):
        study.parameter_axis("lr", [0.0, 0.1], log=True)


def test_parameter_axis_rejects_log_of_a_categorical() -> None:
    with pytest.raises(ValueError, match=r"'opt', whose values are not all numbers \(one is 'sgd'"):
        study.parameter_axis("opt", [0.1, "sgd"], log=True)


# ---------------------------------------------------------------------------------------------
# the importances


def importances(tmp_path: Path, values: dict[str, float] | None, complete: int = 10) -> NDArray:
    path = tmp_path / "i.png"
    study.plot_param_importances(values, path, objective="val/error", complete=complete)
    return pixels(path)


def test_importances_bars_are_sorted_longest_on_top(tmp_path: Path) -> None:
    rgb = importances(tmp_path, {"b": 0.2, "a": 0.7, "c": 0.1})
    assert rgb.shape[:2] == (3 * 30 + 115, 760)
    blue = near(rgb, BLUE, tol=8)
    lengths = [int(blue[50 + 30 * k + 15].sum()) for k in range(3)]  # each bar's middle row
    assert lengths[0] > lengths[1] > lengths[2] > 0
    assert lengths[0] == pytest.approx(7 * lengths[2], rel=0.05)


def test_importances_leave_a_nan_without_a_bar(tmp_path: Path) -> None:
    rgb = importances(tmp_path, {"b": math.nan, "a": 0.75, "c": 0.25})
    blue = near(rgb, BLUE, tol=8)
    lengths = [int(blue[50 + 30 * k + 15].sum()) for k in range(3)]
    assert lengths[2] == 0  # the nan, last
    assert lengths[0] == pytest.approx(3 * lengths[1], rel=0.05)
    assert blue[:, 690:].sum() == 0  # within the axes


@pytest.mark.parametrize("values", [None, {}])
def test_importances_without_values_say_why(
    tmp_path: Path, values: dict[str, float] | None
) -> None:
    rgb = importances(tmp_path, values, complete=1)
    assert rgb.shape[:2] == (200, 700)
    assert not near(rgb, BLUE, tol=40).any()
    assert near(rgb[60:130], (0, 0, 0), tol=60).sum() > 200  # the sentences


def test_importances_say_why_in_different_words_for_enough_trials(tmp_path: Path) -> None:
    few, many = importances(tmp_path, None, complete=1), importances(tmp_path, None, complete=5)
    assert (few != many).any()


# ---------------------------------------------------------------------------------------------
# edge cases of the whole study


def test_a_study_of_one_trial(tmp_path: Path) -> None:
    paths = draw(tmp_path, [trial(0, 0.12, lr=0.1, batch=100)], log_params=["lr"])
    assert [png_size(p) for p in paths] == [(900, 500), (parallel_width(3), 500), (700, 200)]


def test_a_study_of_only_pruned_trials(tmp_path: Path) -> None:
    trials = [trial(k, 0.5 - 0.1 * k, "PRUNED", lr=10.0**-k) for k in range(3)]
    paths = draw(tmp_path, trials, log_params=["lr"])
    assert png_size(paths[1]) == (parallel_width(3), 500)


def test_a_study_of_only_failed_trials(tmp_path: Path) -> None:
    paths = draw(tmp_path, [trial(k, None, "FAIL", lr=0.1) for k in range(3)])
    assert png_size(paths[1]) == (parallel_width(2), 500)


def test_a_study_with_a_constant_param_and_nan_values(tmp_path: Path) -> None:
    trials = [
        trial(0, 0.2, lr=0.1, seed=0),
        trial(1, math.nan, lr=0.2, seed=0),
        trial(2, 0.1, lr=math.inf, seed=0),
        trial(3, 0.3, seed=0),  # lr not set: a conditional parameter
        trial(4, -math.inf, "PRUNED", lr=0.3, seed=0),
    ]
    paths = draw(tmp_path, trials, importances={"lr": math.nan, "seed": 0.0})
    assert [png_size(p) for p in paths] == [(900, 500), (parallel_width(3), 500), (760, 175)]


def test_a_study_of_200_trials(tmp_path: Path) -> None:
    paths = draw(tmp_path, made_up_study(200), importances=IMPORTANCES, log_params=["optim.lr"])
    assert [png_size(p) for p in paths] == [(900, 500), (parallel_width(5), 500), (760, 205)]


# ---------------------------------------------------------------------------------------------
# mistakes


def test_rejects_an_unknown_direction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"direction must be 'minimize' or 'maximize', got 'min'"):
        draw(tmp_path, [trial(0, 0.1)], direction="min")


def test_rejects_no_trials(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="trials is empty"):
        draw(tmp_path, [])


def test_rejects_a_running_trial(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"trials\[1\].state must be one of COMPLETE, PRUNED"):
        draw(tmp_path, [trial(0, 0.1), trial(1, None, "RUNNING")])


def test_rejects_a_trial_number_given_twice(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"trial numbers must be unique; .* \[1\]"):
        draw(tmp_path, [trial(1, 0.1), trial(0, 0.1), trial(1, 0.2)])


def test_rejects_log_params_that_are_not_params(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"log_params \['lrr'\] are not parameters of any trial"):
        draw(tmp_path, [trial(0, 0.1, lr=0.1)], log_params=["lrr"])


def test_parameter_axis_of_a_numeric_choice_spaces_its_values_evenly() -> None:
    axis = study.parameter_axis("optim.batch_size", [20, 500, 50, 20], categorical=True)
    assert axis.labels == ["20", "50", "500"]
    assert axis.at.tolist() == pytest.approx([1 / 6, 5 / 6, 3 / 6, 1 / 6])
    numeric = study.parameter_axis("optim.batch_size", [20, 500, 50, 20])
    assert numeric.labels != axis.labels  # without it: a linear axis over 20..500


def test_parallel_coordinates_takes_categorical_params(tmp_path: Path) -> None:
    trials = [
        TrialPoint(number=i, state="COMPLETE", value=0.1 + i / 100, params={"B": b}, epochs=3)
        for i, b in enumerate((20, 50, 500))
    ]
    plain = study.plot_parallel_coordinates(
        trials, tmp_path / "plain.png", objective="val/error", direction="minimize"
    )
    spaced = study.plot_parallel_coordinates(
        trials,
        tmp_path / "spaced.png",
        objective="val/error",
        direction="minimize",
        categorical_params=["B"],
    )
    assert plain.read_bytes() != spaced.read_bytes()
