#!/usr/bin/env bash
# Set up (scripts/setup.sh), then lint, type-check, check the architecture and run the whole
# test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
SOFTMAX_LAB_BROWSER=1 bash scripts/setup.sh
. .venv/bin/activate
ruff check src tests benchmarks scripts
ruff format --check src tests benchmarks scripts
mypy
lint-imports            # the layer contracts in pyproject.toml ([tool.importlinter])
python -m pytest "$@"
