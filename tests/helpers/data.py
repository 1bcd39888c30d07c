"""Types of the data fixtures in ``conftest.py``: IDX sets written by tests, a local mirror."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

IdxSetWriter = Callable[..., dict[str, NDArray[np.uint8]]]


@dataclass
class Mirror:
    """A local HTTP server publishing the files in `root` at `url`; `requests` lists GET paths."""

    root: Path
    url: str
    requests: list[str] = field(default_factory=list)
