"""The errors softmax-lab raises on purpose, in one hierarchy.

``SoftmaxLabError`` is the base of all of them. Its two branches say who can act on it:

- ``InputError``: the user gave something that cannot be used (a config value, a data file, a
  store, a run id). The message names the key or file, what was expected and what was given;
  the command line prints it as one line and exits with code 2, in one place
  (``softmax_lab.cli``), before any work starts.
- ``TrainingError``: a job started and could not finish (its step size diverged, its worker
  process died). The job's run is recorded as FAILED with the message; a sweep goes on.

Each concrete error is also a ``ValueError`` (input) or ``RuntimeError`` (training), so code
that catches the built-in kinds keeps working. This module imports nothing: every layer may
raise these.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "DatasetError",
    "DownloadError",
    "IdxFormatError",
    "InputError",
    "RerunError",
    "SoftmaxLabError",
    "StoreFullError",
    "SweepLockedError",
    "TrackingError",
    "TrainingError",
]


class SoftmaxLabError(Exception):
    """Base of every error softmax-lab raises on purpose."""


class InputError(SoftmaxLabError, ValueError):
    """Something the user gave cannot be used; the command line exits with code 2."""


class TrainingError(SoftmaxLabError, RuntimeError):
    """A job started and could not finish; its run is recorded as FAILED."""


class ConfigError(InputError):
    """One or more config values break a rule; the message lists each as key, rule, value.

    ``ConfigError.broken(problems)`` makes the error for a list of broken rules: one problem
    stays on one line (``invalid config: optim.lr must be > 0 …``), several get a line each;
    ``problems`` keeps them for callers that report them their own way (a sweep's job list).
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems) or (message,)

    @classmethod
    def broken(cls, problems: Sequence[str]) -> ConfigError:
        if len(problems) == 1:
            return cls(f"invalid config: {problems[0]}", problems)
        return cls("invalid config:\n  " + "\n  ".join(problems), problems)


class DatasetError(InputError):
    """A dataset cannot be found, downloaded or assembled."""


class IdxFormatError(DatasetError):
    """A file is not a well-formed IDX file (or not a readable gzip stream)."""


class DownloadError(DatasetError):
    """No mirror delivered a file that matches its checksum.

    ``failures`` holds one line per mirror tried: its URL and what went wrong.
    """

    def __init__(self, message: str, failures: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.failures = tuple(failures)


class TrackingError(InputError):
    """A tracking store, experiment or run is not what the caller asked for."""


class StoreFullError(TrackingError):
    """A store's database or disk is full: it takes no more writes (SQLite's ``SQLITE_FULL``,
    ``ENOSPC`` on its file system). Before a command's work: exit 2; during a sweep, the job
    whose write failed ends FAILED with it."""


class SweepLockedError(TrackingError):
    """Another process is running the same sweep (it holds the sweep's lock in the store)."""


class RerunError(InputError):
    """The run cannot be rerun as asked: the message says what was expected and what was found."""
