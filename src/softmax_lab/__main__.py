"""``python -m softmax_lab`` is the ``softmax-lab`` command."""

from __future__ import annotations

from softmax_lab.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
