#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the offline demo sweep tracked in MLflow and compare it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
softmax-lab train -m +experiment=demo
