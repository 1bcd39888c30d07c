"""What the sweeper (main process) shares with the jobs it runs in the same process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from softmax_lab.cli.console import SweepProgress
from softmax_lab.core.training import EpochMetrics

__all__ = ["SweepState", "composed", "current", "judges", "last_exit_code", "prepared"]


@dataclass
class SweepState:
    """The sweep under way in this process, if any."""

    sweep_id: str
    total: int
    progress: SweepProgress | None = None
    # (resolved tracking URI, experiment) → experiment id, for the stores the sweeper prepared
    experiment_ids: dict[tuple[str, str], str] = field(default_factory=dict)


# configs the sweeper composed, keyed by the job's overrides, for the launcher to reuse
composed: dict[tuple[str, ...], Any] = {}
# (resolved tracking URI, experiment) → experiment id, prepared for a single run (run_check)
prepared: dict[tuple[str, str], str] = {}
current: list[SweepState] = []  # at most one: the sweep this process is running
last_exit_code: list[int] = [0]  # set by a sweep or a single run, read by the CLI
# job output dir → why its Hydra files could not be written (hydra_job); taken by its task
output_problems: dict[str, str] = {}
# Hydra job number → its judge, set by a sweeper that prunes (Optuna) before it launches the
# jobs: called with each of the job's epochs once logged, True stops the job after it
judges: dict[int, Callable[[EpochMetrics], bool]] = {}
