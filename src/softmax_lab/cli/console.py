"""What the CLI prints: the per-epoch table of the reference, and progress bars on a TTY."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from softmax_lab.core.training import EpochMetrics
from softmax_lab.errors import InputError

__all__ = ["INPUT_ERROR_EXIT", "EpochTable", "SweepProgress", "report_input_error"]

HEADER = "| epoch | train loss | train err | test loss | test err | seconds |"
RULE = "|-------|------------|-----------|-----------|----------|---------|"
# with a validation split (dataset.val_size > 0): its columns between train and test
VAL_HEADER = (
    "| epoch | train loss | train err | val loss | val err | test loss | test err | seconds |"
)
VAL_RULE = (
    "|-------|------------|-----------|----------|---------|-----------|----------|---------|"
)


INPUT_ERROR_EXIT = 2  # the exit code of every softmax_lab.errors.InputError


def report_input_error(err: InputError, *, command: str = "", suffix: str = "") -> int:
    """Print what the user gave that cannot be used as one line on stderr (no traceback);
    return the exit code every ``InputError`` maps to. ``command`` names the subcommand in the
    prefix (``softmax-lab rerun: …``); ``suffix`` adds e.g. ``; nothing was run``."""
    prefix = f"softmax-lab {command}" if command else "softmax-lab"
    print(f"{prefix}: {err}{suffix}", file=sys.stderr)
    return INPUT_ERROR_EXIT


def _is_tty(stream: TextIO) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


class EpochTable:
    """Prints one row per epoch as the reference does; on a TTY also a progress bar of epochs.
    With ``val`` (a run with a validation split), each row also has val loss and val err."""

    def __init__(
        self, epochs: int, *, title: str = "", stream: TextIO | None = None, val: bool = False
    ) -> None:
        self.stream = stream or sys.stdout
        self.val = val
        self._bar: Any = None
        if _is_tty(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=epochs, desc=title or "epochs", unit="epoch", leave=False)
        elif title:
            print(title, file=self.stream)
        self._write(VAL_HEADER if val else HEADER)
        self._write(VAL_RULE if val else RULE)

    def _write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def __call__(self, m: EpochMetrics) -> None:
        val = ""
        if self.val:
            loss, err = (float("nan") if v is None else v for v in (m.val_loss, m.val_error))
            val = f"{loss:8.5f} | {err:7.5f} | "
        self._write(
            f"| {m.epoch:5d} | {m.train_loss:10.5f} | {m.train_error:9.5f} | {val}"
            f"{m.test_loss:9.5f} | {m.test_error:8.5f} | {m.seconds:7.3f} |"
        )
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class SweepProgress:
    """A bar over a sweep's jobs on a TTY; plain ``[job i/n]`` lines otherwise."""

    def __init__(self, total: int, *, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.total = total
        self.done = 0
        self._bar: Any = None
        if _is_tty(self.stream) and total > 1:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc="sweep", unit="job", position=0)

    def start(self, label: str) -> None:
        self.write(f"[job {self.done + 1}/{self.total}] {label}")

    def write(self, line: str) -> None:
        """A line above the bar (on a TTY), or a plain line."""
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def finish(self, status: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.set_postfix_str(status)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
