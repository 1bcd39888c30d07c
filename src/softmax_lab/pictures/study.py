"""The three pictures of an Optuna study: its optimisation history, the parallel coordinates of
its searched parameters, and the parameters' importances.

``draw_study_pictures`` writes them into one directory, as the sweeper logs them on the study's
parent run. The input is plain data, one ``TrialPoint`` per trial (what the sweeper reads off
Optuna's trials) and the importances the sweeper computed, so nothing here imports Optuna or
MLflow. Each ``plot_*`` function draws one picture on a ``pictures.raster`` canvas; each
picture's size depends only on its input's shape, and the same input gives the same bytes.

Missing values are drawn as missing, and each picture says how many there were: a trial whose
objective is None, NaN or ±inf is left out of the lines and marked "×" along the history's
x-axis; a parameter value that is NaN, ±inf or not set (a conditional parameter) breaks the
trial's line at that axis.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from softmax_lab.pictures.axes import (
    PAD,
    TICK,
    EpochPanel,
    draw_axes,
    draw_colourbar,
    draw_markers,
    draw_polyline,
    draw_series,
    format_ticks,
    limits,
    nice_ticks,
)
from softmax_lab.pictures.raster import (
    BLACK,
    DRAWING,
    GREYS,
    LABEL,
    SMALL,
    TAB10,
    TITLE,
    VIRIDIS,
    WHITE,
    Box,
    Colour,
    blank,
    draw_text,
    draw_title,
    fit_text,
    map_colours,
    palette,
    save_png,
    text_size,
    tints,
)

__all__ = [
    "HISTORY_BOX",
    "HISTORY_FILE",
    "IMPORTANCES_FILE",
    "LINES",
    "PARALLEL_FILE",
    "PARALLEL_LEFT",
    "PARALLEL_SPACING",
    "PARALLEL_Y",
    "Axis",
    "TrialPoint",
    "draw_study_pictures",
    "parameter_axis",
    "plot_optimisation_history",
    "plot_parallel_coordinates",
    "plot_param_importances",
]

PathLike: TypeAlias = str | os.PathLike[str]
Param: TypeAlias = float | int | str | bool | None

STATES = ("COMPLETE", "PRUNED", "FAIL")
DIRECTIONS = ("minimize", "maximize")
HISTORY_FILE = "optimisation_history.png"
PARALLEL_FILE = "parallel_coordinates.png"
IMPORTANCES_FILE = "param_importances.png"
EPOCHS_AXIS = "epochs trained"  # the parallel coordinates' axis of where pruned trials stopped

COMPLETE: Colour = TAB10[0]  # filled markers
PRUNED: Colour = (128, 128, 128)  # hollow markers (a grey of GREYS, so exact in the PNG)
BEST: Colour = TAB10[3]  # the best-so-far line
HISTORY_BOX: Box = (75, 50, 690, 440)  # the history's axes on its 900 × 500 canvas
HISTORY_COLOURS = palette(GREYS, tints(COMPLETE, 64), tints(BEST, 64))

# viridis short of its palest yellows, which vanish on white: dark is the best trial
LINES = VIRIDIS[np.round(np.linspace(0, 215, 256)).astype(np.intp)]
FAINT = 0.6  # a pruned trial's line is its colour blended this far into white


def _faint(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return np.round(rgb * (1 - FAINT) + 255 * FAINT).astype(np.uint8)


PARALLEL_COLOURS = palette(GREYS, LINES[::4], _faint(LINES[::4]))
PARALLEL_LEFT, PARALLEL_SPACING = 100, 170  # x of the first axis and between axes, px
PARALLEL_Y = (80, 450)  # y of the axes' top and bottom ends, px; the canvas is 500 px high
IMPORTANCE_COLOURS = palette(GREYS, tints(COMPLETE, 32))


@dataclass(frozen=True)
class TrialPoint:
    """One trial of a study, as its pictures need it.

    Attributes
    ----------
    number : int
        Optuna's trial number.
    state : str
        ``"COMPLETE"``, ``"PRUNED"`` or ``"FAIL"``.
    value : float or None
        The objective: the final value of a complete trial, the last reported one of a pruned
        trial; None for a failed one.
    params : dict of str to float, int, str, bool or None
        The searched parameters' values; a conditional parameter the trial did not use is
        left out.
    epochs : int
        Epochs the trial trained (its last reported step).
    """

    number: int
    state: str
    value: float | None
    params: dict[str, Param]
    epochs: int


def draw_study_pictures(
    out_dir: Path,
    trials: Sequence[TrialPoint],
    *,
    objective: str,
    direction: str,
    importances: Mapping[str, float] | None,
    log_params: Collection[str] = (),
    categorical_params: Collection[str] = (),
) -> list[Path]:
    """Draw a study's optimisation history, parallel coordinates and parameter importances.

    Parameters
    ----------
    out_dir : pathlib.Path
        Where the pictures go; created if missing.
    trials : sequence of TrialPoint
        The study's finished trials, in any order (running ones left out).
    objective : str
        The objective's name, e.g. ``"val/error"``: the axis labels.
    direction : str
        ``"minimize"`` or ``"maximize"``: which values are best.
    importances : mapping of parameter name to float, or None
        Each parameter's importance (e.g. Optuna's ``get_param_importances``). None or empty
        when the caller could not compute them (fewer than 2 complete trials): the
        importances picture is still written and says so, so that every study has the same
        three pictures.
    log_params : collection of str
        Parameters searched on a log scale, whose axes are drawn in log10.
    categorical_params : collection of str
        Parameters searched as a choice, whose axes show their values as evenly spaced ticks
        even when they are numbers (a batch size of 20, 50, 100, 200 or 500).

    Returns
    -------
    list of pathlib.Path
        ``optimisation_history.png``, ``parallel_coordinates.png``, ``param_importances.png``
        in ``out_dir``, each written atomically.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    history = plot_optimisation_history(
        trials, out_dir / HISTORY_FILE, objective=objective, direction=direction
    )
    parallel = plot_parallel_coordinates(
        trials,
        out_dir / PARALLEL_FILE,
        objective=objective,
        direction=direction,
        importances=importances,
        log_params=log_params,
        categorical_params=categorical_params,
    )
    value, state = _objective(trials), _states(trials)
    complete = int(np.count_nonzero((state == "COMPLETE") & np.isfinite(value)))
    bars = plot_param_importances(
        importances, out_dir / IMPORTANCES_FILE, objective=objective, complete=complete
    )
    return [history, parallel, bars]


# ---------------------------------------------------------------------------------------------
# the trials as arrays


def _checked(trials: Sequence[TrialPoint], direction: str) -> list[TrialPoint]:
    """``trials`` sorted by number, after checking them and ``direction``."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
    if len(trials) == 0:
        raise ValueError("trials is empty: a study's pictures need at least one finished trial")
    for i, trial in enumerate(trials):
        if trial.state not in STATES:
            raise ValueError(
                f"trials[{i}].state must be one of {', '.join(STATES)}, got {trial.state!r} "
                "(leave out trials that are still running)"
            )
    ordered = sorted(trials, key=lambda t: t.number)
    numbers = [t.number for t in ordered]
    twice = sorted({a for a, b in itertools.pairwise(numbers) if a == b})
    if twice:
        raise ValueError(f"trial numbers must be unique; given more than once: {twice}")
    return ordered


def _objective(trials: Sequence[TrialPoint]) -> NDArray[np.float64]:
    """Each trial's objective (T,), NaN where it has none or it is not finite."""
    value = np.array([np.nan if t.value is None else t.value for t in trials], dtype=np.float64)
    value[~np.isfinite(value)] = np.nan
    return value


def _states(trials: Sequence[TrialPoint]) -> NDArray[np.str_]:
    return np.array([t.state for t in trials], dtype=str)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------------------------------------
# optimisation history


def plot_optimisation_history(
    trials: Sequence[TrialPoint], path: PathLike, *, objective: str, direction: str
) -> Path:
    """The objective of each trial by its number, and the best so far, on a 900 × 500 canvas.

    Complete trials are filled blue circles, pruned ones hollow grey circles at their last
    reported value; trials without a finite value (failed, or NaN/inf) are "×" along the
    x-axis, counted in the legend. The red step line is the best complete value so far (the
    lowest for ``"minimize"``, the highest for ``"maximize"``), drawn on to the last trial.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    t0 = time.perf_counter()
    ordered = _checked(trials, direction)
    number = np.array([t.number for t in ordered], dtype=np.float64)  # (T,)
    value, state = _objective(ordered), _states(ordered)  # (T,) each
    complete = (state == "COMPLETE") & np.isfinite(value)
    pruned = (state == "PRUNED") & np.isfinite(value)
    failed = state == "FAIL"
    unknown = ~(complete | pruned | failed)  # complete or pruned, without a finite value
    better = "lower" if direction == "minimize" else "higher"
    x0, y0, x1, y1 = box = HISTORY_BOX
    w, h = x1 - x0, y1 - y0
    with DRAWING:
        canvas = blank(900, 500)
        plot = EpochPanel.over(number, value[complete | pruned], w, h, xticks=10)
        draw = plot.draw
        best = None
        if complete.any():
            xs, ys = number[complete], value[complete]
            running = (np.minimum if direction == "minimize" else np.maximum).accumulate(ys)
            # a step after each complete trial, held to the last trial
            ends = np.append(xs[1:], number[-1])
            step = plot.at(np.stack([xs, ends], axis=1).ravel(), np.repeat(running, 2))
            draw_polyline(draw, step, BEST, width=4)
            k = int(np.argmin(ys) if direction == "minimize" else np.argmax(ys))
            best = (int(xs[k]), float(ys[k]))
        _draw_rings(draw, plot.at(number[pruned], value[pruned]), PRUNED, size=16)
        draw_markers(draw, plot.at(number[complete], value[complete]), COMPLETE, size=14)
        crosses = plot.at(number[failed | unknown], np.zeros(int((failed | unknown).sum())))
        crosses[:, 1] = 2 * h - 14  # along the x-axis
        _draw_crosses(draw, crosses, BLACK, size=12)
        xticks, yticks = plot.paste(canvas, box)
        draw_axes(
            canvas,
            box,
            xticks=xticks,
            yticks=yticks,
            xlabel="trial number",
            ylabel=fit_text(objective, h, LABEL, smallest=LABEL)[0],
        )
        title = f"Optimisation history: {objective} of {_plural(len(ordered), 'trial')}"
        draw_title(canvas, f"{title} ({better} is better)", 450, 880, y=6)
        rows = [
            ("dot", COMPLETE, f"complete: {int(complete.sum())}"),
            ("ring", PRUNED, f"pruned: {int(pruned.sum())} (last value)"),
            ("line", BEST, "best so far"),
        ]
        if best is not None:
            rows.append(("", BLACK, f"{best[1]:.4g} (trial {best[0]})"))
        else:
            rows.append(("", BLACK, "(no complete trial)"))
        if failed.any():
            rows.append(("cross", BLACK, f"failed: {int(failed.sum())}"))
        if unknown.any():
            rows.append(("cross", BLACK, f"NaN/inf value: {int(unknown.sum())}"))
        _draw_legend(canvas, rows, (x1 + 12, y0))
        return save_png(canvas, path, HISTORY_COLOURS, started=t0)


def _draw_rings(
    draw: ImageDraw.ImageDraw, points: NDArray[np.float64], colour: Colour, *, size: float
) -> None:
    """Hollow circles ``size`` px across, 4 px thick, centred on ``points`` (p, 2)."""
    r = size / 2
    for x, y in points.tolist():
        draw.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=4)


def _draw_crosses(
    draw: ImageDraw.ImageDraw, points: NDArray[np.float64], colour: Colour, *, size: float
) -> None:
    """ "×" marks ``size`` px across, 3 px thick, centred on ``points`` (p, 2)."""
    r = size / 2
    for x, y in points.tolist():
        draw.line((x - r, y - r, x + r, y + r), fill=colour, width=3)
        draw.line((x - r, y + r, x + r, y - r), fill=colour, width=3)


def _draw_legend(
    canvas: Image.Image, rows: list[tuple[str, Colour, str]], corner: tuple[int, int]
) -> None:
    """Rows of a sample (``"dot"``, ``"ring"``, ``"line"``, ``"cross"`` or none) and its text,
    20 px apart from ``corner``; the samples drawn at 2× and halved, as the markers are."""
    x, y = corner
    strip = blank(2 * 30, 2 * 20 * len(rows))
    draw = ImageDraw.Draw(strip)
    for k, (kind, colour, _) in enumerate(rows):
        at = np.array([[30.0, 40.0 * k + 20]])  # 2× px
        if kind == "dot":
            draw_markers(draw, at, colour, size=14)
        elif kind == "ring":
            _draw_rings(draw, at, colour, size=16)
        elif kind == "line":
            draw_polyline(draw, np.array([[6.0, at[0, 1]], [54.0, at[0, 1]]]), colour, width=4)
        elif kind == "cross":
            _draw_crosses(draw, at, colour, size=12)
    canvas.paste(strip.reduce(2), (x, y))
    for k, (_, _, text) in enumerate(rows):
        label = fit_text(text, canvas.width - x - 36, SMALL, smallest=SMALL)[0]
        draw_text(canvas, (x + 32, y + 20 * k + 10), label, size=SMALL, anchor="lm")


# ---------------------------------------------------------------------------------------------
# parallel coordinates


@dataclass(frozen=True)
class Axis:
    """One vertical axis of the parallel coordinates.

    Attributes
    ----------
    name : str
        What it shows, written above it.
    at : ndarray of shape (T,), float64
        Each trial's height on it, 0 at the bottom and 1 at the top; NaN where the trial has
        no value.
    ticks : ndarray of shape (K,), float64
        The ticks' heights, in the same units.
    labels : list of K str
        The ticks' labels.
    """

    name: str
    at: NDArray[np.float64]
    ticks: NDArray[np.float64]
    labels: list[str]


def _number(v: object) -> float | None:
    """``v`` as a float when it is a number (not a bool), else None."""
    if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_):
        return float(v)
    return None


def parameter_axis(
    name: str, values: Sequence[Param], *, log: bool = False, categorical: bool = False
) -> Axis:
    """The axis of one parameter (or the objective) over some trials.

    Values that are NaN or ±inf count as missing (NaN in ``at``): pass NaN for a trial that
    lacks the parameter. When every other value is a number (not a bool) the axis is numeric:
    linear, or log10 with ``log``, over the values' range with 5 % margins (±5 % around a
    single value). Otherwise, or with ``categorical``, it is categorical: its values as evenly
    spaced ticks, numbers first by value, then bools and strings by their text, None last.

    Raises
    ------
    ValueError
        When ``log`` is asked for an axis that is not numeric, or for a value that is not > 0.
    """
    number = [_number(v) for v in values]  # None: not a number
    if not categorical and all(n is not None for n in number):
        x = np.array(number, dtype=np.float64)  # (T,)
        x[~np.isfinite(x)] = np.nan
        whole = all(isinstance(v, int | np.integer) for v in values)
        return _numeric_axis(name, x, log=log, integer=whole)
    if log:
        odd = next(v for v, n in zip(values, number, strict=True) if n is None)
        raise ValueError(
            f"log_params names {name!r}, whose values are not all numbers (one is {odd!r}): "
            "only a numeric axis can be drawn in log10"
        )

    def level(v: Param, n: float | None) -> tuple[tuple[int, float, str], str] | None:
        """The sort key and label of a value; None when it is missing."""
        if n is not None:
            return ((0, n, ""), f"{n:g}") if math.isfinite(n) else None
        return ((2, 0.0, ""), "None") if v is None else ((1, 0.0, str(v)), str(v))

    found = [level(v, n) for v, n in zip(values, number, strict=True)]
    levels = [lab for _, lab in sorted({f for f in found if f is not None})]
    index = {lab: i for i, lab in enumerate(levels)}
    k = len(levels)
    at = np.array([np.nan if f is None else (index[f[1]] + 0.5) / k for f in found])
    return Axis(name, at, (np.arange(k) + 0.5) / k, levels)


def _numeric_axis(name: str, x: NDArray[np.float64], *, log: bool, integer: bool) -> Axis:
    """A linear or log10 axis of ``x`` (T,), NaN missing."""
    finite = x[np.isfinite(x)]
    if finite.size == 0:  # nothing to scale: no ticks
        return Axis(name, x.copy(), np.zeros(0), [])
    if log:
        if (finite <= 0).any():
            raise ValueError(
                f"log_params names {name!r}, but it takes the value {float(finite.min()):g}: "
                "a log10 axis needs values > 0"
            )
        x = np.log10(x)
    lo, hi = limits(x)
    if log:
        ticks, labels = _log_ticks(lo, hi)
    else:
        ticks = nice_ticks(lo, hi, n=6, integer=integer and hi - lo >= 2)
        labels = format_ticks(ticks)
    return Axis(name, (x - lo) / (hi - lo), (ticks - lo) / (hi - lo), labels)


def _log_ticks(lo: float, hi: float) -> tuple[NDArray[np.float64], list[str]]:
    """Ticks in [lo, hi] of log10 values: decades (at most 7), else 1, 2, 5 and 1 … 9 times a
    decade, else nice linear ticks of the values; labels in the values' units."""
    decades = np.arange(math.floor(lo), math.ceil(hi) + 1, dtype=np.float64)
    ticks = np.zeros(0)
    for mantissas in ((1.0,), (1.0, 2.0, 5.0), tuple(range(1, 10))):
        grid = (decades[:, None] + np.log10(np.array(mantissas))[None, :]).ravel()
        ticks = grid[(grid >= lo - 1e-9) & (grid <= hi + 1e-9)]
        if len(ticks) >= 2:
            break
    else:
        ticks = np.log10(nice_ticks(10**lo, 10**hi, n=4))
    if len(ticks) > 7:  # decades only, here
        ticks = ticks[:: math.ceil(len(ticks) / 7)]
    return ticks, [f"{10**t:g}".replace("-", "−") for t in ticks.tolist()]


def plot_parallel_coordinates(
    trials: Sequence[TrialPoint],
    path: PathLike,
    *,
    objective: str,
    direction: str,
    importances: Mapping[str, float] | None = None,
    log_params: Collection[str] = (),
    categorical_params: Collection[str] = (),
) -> Path:
    """One vertical axis per searched parameter and one for the objective, and a line per
    trial through its values, coloured by its objective.

    The parameters come in the order the trials first name them, or by decreasing importance
    when ``importances`` gives any (those without one last). Numeric parameters are scaled
    linearly, or in log10 for ``log_params``; others, and ``categorical_params``, are
    categorical (``parameter_axis``).
    When a trial was pruned, an axis of the epochs each trial trained comes before the
    objective's. Complete trials are coloured by viridis, darkest the best (lowest for
    ``"minimize"``), best on top and the best of all thicker; pruned trials fainter, beneath;
    a colourbar on the right. Trials without a finite objective are left out, and a line
    breaks at an axis where its trial has no value: the subtitle counts both.

    The canvas is ``PARALLEL_LEFT + 170 × (axes − 1) + 180`` (at least 640) by 500 pixels.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    t0 = time.perf_counter()
    ordered = _checked(trials, direction)
    names = list(dict.fromkeys(name for t in ordered for name in t.params))
    unknown = sorted(set(log_params) - set(names))
    if unknown:
        raise ValueError(f"log_params {unknown} are not parameters of any trial; they are {names}")
    if importances:
        rank = {p: float(v) for p, v in importances.items() if math.isfinite(float(v))}
        names.sort(key=lambda p: -rank.get(p, -math.inf))
    value, state = _objective(ordered), _states(ordered)
    drawn = (state != "FAIL") & np.isfinite(value)
    kept = [t for t, d in zip(ordered, drawn, strict=True) if d]
    pruned = state[drawn] == "PRUNED"  # (N,)
    axes = [
        parameter_axis(
            p,
            [t.params.get(p, np.nan) for t in kept],
            log=p in log_params,
            categorical=p in categorical_params,
        )
        for p in names
    ]
    if pruned.any():
        axes.append(parameter_axis(EPOCHS_AXIS, [t.epochs for t in kept]))
    axes.append(parameter_axis(objective, value[drawn].tolist()))
    notes = [f"{int((~pruned).sum())} complete"]
    if pruned.any():
        notes.append(f"{int(pruned.sum())} pruned (faint)")
    if (~drawn).any():
        notes.append(f"{int((~drawn).sum())} failed or NaN/inf: not drawn")
    broken = int(np.isnan(np.stack([a.at for a in axes], axis=1)).any(axis=1).sum())
    if broken:
        notes.append(f"{_plural(broken, 'line')} broken where a value is missing or NaN/inf")
    with DRAWING:
        title = f"Parallel coordinates: {objective} of {_plural(len(ordered), 'trial')}"
        canvas = _draw_parallel(
            axes, value[drawn], pruned, direction=direction, title=title, notes=notes
        )
        return save_png(canvas, path, PARALLEL_COLOURS, started=t0)


def _draw_parallel(
    axes: list[Axis],
    value: NDArray[np.float64],
    pruned: NDArray[np.bool_],
    *,
    direction: str,
    title: str,
    notes: list[str],
) -> Image.Image:
    """The axes (the objective's last), the trials' lines (``value`` and ``pruned`` of shape
    (N,)) and the colourbar."""
    A = len(axes)
    top, bottom = PARALLEL_Y
    right = PARALLEL_LEFT + PARALLEL_SPACING * (A - 1)
    canvas = blank(max(right + 180, 640), 500)
    # the lines, at 2× and halved; the panel reaches 4 px beyond the outer axes
    margin = 4
    panel = blank(2 * (right - PARALLEL_LEFT + 2 * margin), 2 * (bottom - top + 2 * margin))
    draw = ImageDraw.Draw(panel)
    lut = LINES if direction == "minimize" else LINES[::-1]
    lo, hi = (float(value.min()), float(value.max())) if value.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = limits(value)
    colour = map_colours(value, lut, lo, hi)  # (N, 3)
    colour[pruned] = _faint(colour[pruned])
    xs = 2.0 * (margin + PARALLEL_SPACING * np.arange(A))  # (A,)
    ys = 2.0 * (margin + (1 - np.stack([a.at for a in axes], axis=1)) * (bottom - top))  # (N, A)
    # pruned beneath, then the complete ones worst first: the best on top
    sign = 1.0 if direction == "minimize" else -1.0
    order = np.lexsort((-sign * value, ~pruned))
    dot = 10 if A == 1 else 0  # one axis has no lines: its points, then
    for n in order.tolist():
        points = np.stack([xs, ys[n]], axis=1)  # (A, 2)
        r, g, b = colour[n].tolist()
        draw_series(draw, points, (r, g, b), width=2 if pruned[n] else 4, marker=dot)
    if (~pruned).any():  # the best of all, thicker
        n = int(order[-1])
        r, g, b = colour[n].tolist()
        draw_series(draw, np.stack([xs, ys[n]], axis=1), (r, g, b), width=7)
    canvas.paste(panel.reduce(2), (PARALLEL_LEFT - margin, top - margin))
    for a, axis in enumerate(axes):
        _draw_parallel_axis(canvas, axis, PARALLEL_LEFT + PARALLEL_SPACING * a)
    better = "lower" if direction == "minimize" else "higher"
    objective = axes[-1].name
    label = fit_text(f"{objective} ({better} is better: dark)", bottom - top, 13, smallest=11)[0]
    bar_x = right + 50
    draw_colourbar(canvas, (bar_x, top, bar_x + 16, bottom), lut, lo, hi, label=label)
    draw_title(canvas, title, canvas.width / 2, canvas.width - 20, y=6)
    note = fit_text("; ".join(notes), canvas.width - 20, SMALL, smallest=SMALL)[0]
    draw_text(canvas, (canvas.width / 2, 30), note, size=SMALL, anchor="ma")
    return canvas


def _draw_parallel_axis(canvas: Image.Image, axis: Axis, x: int) -> None:
    """A vertical axis at ``x``: its line, ticks labelled on its left on white, and its name."""
    top, bottom = PARALLEL_Y
    draw = ImageDraw.Draw(canvas)
    draw.line((x, top, x, bottom), fill=BLACK)
    height = bottom - top
    py = bottom - axis.ticks * height  # (K,)
    # categorical ticks closer than a label's height: label every k-th
    gap = float(np.min(np.abs(np.diff(py)))) if len(py) > 1 else height
    every = max(1, math.ceil((SMALL + 3) / max(gap, 1.0)))
    room = PARALLEL_SPACING - 2 * TICK - 2 * PAD - 20
    for y, text in list(zip(py.tolist(), axis.labels, strict=True))[::every]:
        draw.line((x - TICK, round(y), x, round(y)), fill=BLACK)
        label = fit_text(text, room, SMALL, smallest=SMALL)[0]
        w, h = text_size(label, SMALL)
        right = x - TICK - PAD
        draw.rectangle(
            (right - w - 2, round(y - h / 2) - 2, right + 1, round(y + h / 2) + 1), WHITE
        )
        draw_text(canvas, (right, y), label, size=SMALL, anchor="rm")
    name, size = fit_text(axis.name, PARALLEL_SPACING - 10, LABEL, smallest=SMALL)
    draw_text(canvas, (x, top - 10), name, size=size, anchor="md")


# ---------------------------------------------------------------------------------------------
# importances


def plot_param_importances(
    importances: Mapping[str, float] | None, path: PathLike, *, objective: str, complete: int
) -> Path:
    """A horizontal bar per parameter's importance, the most important on top, each with its
    value written at its end; a NaN or inf importance gets no bar and reads "n/a".

    With no importances (None or empty) the picture, 700 × 200, says why instead: fewer than
    2 of the ``complete`` trials with a finite objective, or else that none were computed. With
    importances it is 760 by 30 per parameter + 115 pixels.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    t0 = time.perf_counter()
    title = f"Parameter importances for {objective}"
    with DRAWING:
        if not importances:
            canvas = blank(700, 200)
            draw_title(canvas, title, 350, 680, y=8)
            why = (
                f"they need at least 2 complete trials; this study has {complete}"
                if complete < 2
                else f"none were computed (the study has {complete} complete trials)"
            )
            draw_text(canvas, (350, 80), "No importances to show:", size=LABEL, anchor="mm")
            draw_text(
                canvas,
                (350, 110),
                fit_text(why, 680, LABEL, smallest=SMALL)[0],
                size=LABEL,
                anchor="mm",
            )
        else:
            canvas = _draw_importances(dict(importances), title=title)
        return save_png(canvas, path, IMPORTANCE_COLOURS, started=t0)


def _draw_importances(importances: dict[str, float], *, title: str) -> Image.Image:
    """Bars of ``importances`` sorted by value, the largest on top, non-finite ones last."""
    value = np.array([float(v) for v in importances.values()], dtype=np.float64)  # (P,)
    ok = np.isfinite(value)
    order = np.lexsort((-np.where(ok, value, 0.0), ~ok))
    names = [list(importances)[i] for i in order.tolist()]
    value, ok = value[order], ok[order]
    n = len(names)
    row = 30
    canvas = blank(760, row * n + 115)
    labels = [fit_text(name, 240, LABEL, smallest=SMALL)[0] for name in names]
    left = 30 + max(text_size(label, LABEL)[0] for label in labels)
    box = x0, y0, x1, _ = left, 50, 760 - 70, 50 + row * n
    finite = value[ok]
    lo = min(0.0, float(finite.min())) if finite.size else 0.0
    hi = max(0.0, float(finite.max())) if finite.size else 1.0
    span = hi - lo or 1.0
    xlo, xhi = lo - 0.05 * span * (lo < 0), hi + 0.05 * span * (hi > 0 or lo == 0)
    xt = nice_ticks(xlo, xhi, n=6)

    def px(v: float) -> float:
        return x0 + (v - xlo) / (xhi - xlo) * (x1 - x0)

    draw = ImageDraw.Draw(canvas)
    for k, v in enumerate(value.tolist()):
        yc = y0 + (k + 0.5) * row
        if math.isfinite(v):
            a, b = sorted((round(px(0.0)), round(px(v))))
            draw.rectangle((a, round(yc - 0.35 * row), b, round(yc + 0.35 * row) - 1), COMPLETE)
            at, anchor = ((px(v) + 4, yc), "lm") if v >= 0 else ((px(v) - 4, yc), "rm")
            draw_text(canvas, at, f"{v:.3f}", size=SMALL, anchor=anchor)
        else:
            draw_text(canvas, (px(0.0) + 4, yc), "n/a", size=SMALL, anchor="lm")
    draw_axes(
        canvas,
        box,
        xticks=([px(t) for t in xt.tolist()], format_ticks(xt)),
        yticks=([y0 + (k + 0.5) * row for k in range(n)], labels),
        xlabel="importance",
        tick_size=LABEL,
    )
    draw_title(canvas, title, 380, 740, y=8, size=TITLE)
    if not ok.all():
        note = f"n/a: {_plural(int((~ok).sum()), 'importance')} not a finite number"
        draw_text(canvas, (380, canvas.height - 6), note, size=SMALL, anchor="md")
    return canvas
