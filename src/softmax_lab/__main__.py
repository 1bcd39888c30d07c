"""``python -m softmax_lab`` is the ``softmax-lab`` command."""

from __future__ import annotations

from softmax_lab.cli import run

if __name__ == "__main__":
    run()
