"""A job's log file (Hydra's ``<job dir>/softmax-lab.log``) that a full disk cannot flood.

Python's ``logging.FileHandler`` prints a "--- Logging error ---" traceback on stderr for every
record it cannot write: on a full disk, one per log line, hundreds in a sweep. ``JobLogFile``
(``hydra.job_logging.handlers.file`` in ``conf/config.yaml``) keeps whole records only: when a
record cannot be written it cuts the file back to its last whole record, writes no more, and
says so once per process, in one line on stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

__all__ = ["JobLogFile"]

_warned: list[bool] = [False]  # one line per process, however many job logs fail


class JobLogFile(logging.FileHandler):
    """``logging.FileHandler`` that stops, quietly but once said, when its file cannot be
    written (``OSError``, e.g. no space left on device), leaving only whole records."""

    def __init__(
        self,
        filename: str,
        mode: str = "a",
        encoding: str | None = None,
        delay: bool = False,
        errors: str | None = None,
    ) -> None:
        self._broken = False
        self._whole = 0  # the file's size after its last whole record
        super().__init__(filename, mode, encoding, delay, errors)
        if self.stream is not None:
            self._whole = self.stream.tell()

    def emit(self, record: logging.LogRecord) -> None:
        if self._broken:
            return
        if self.stream is None:  # delay=True, or reopened: FileHandler opens outside its try
            try:
                self.stream = self._open()
                self._whole = self.stream.tell()
            except OSError as err:
                self._stop(err)
                return
        super().emit(record)  # a failed write lands in handleError
        if not self._broken and self.stream is not None:
            self._whole = self.stream.tell()

    def handleError(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        if not isinstance(err, OSError):
            super().handleError(record)
            return
        self._stop(err)

    def _stop(self, err: OSError) -> None:
        self._broken = True
        stream, self.stream = self.stream, None
        with contextlib.suppress(OSError):  # flushing the rest of the record fails again
            if stream is not None:
                stream.close()
        with contextlib.suppress(OSError):  # whole records only: no cut line, no empty file
            if self._whole == 0:
                os.remove(self.baseFilename)
            else:
                os.truncate(self.baseFilename, self._whole)
        if not _warned[0]:
            _warned[0] = True
            print(
                f"softmax-lab: cannot write the job log {self.baseFilename} ({err.strerror}); "
                "job logs that fail so are cut at their last whole line",
                file=sys.stderr,
            )

    def close(self) -> None:
        try:
            super().close()
        except OSError:  # the last flush of a broken file
            self.stream = None
