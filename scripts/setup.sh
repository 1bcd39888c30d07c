#!/usr/bin/env bash
# Set up softmax-lab on a fresh Debian/Ubuntu machine: system data packages, a virtualenv in
# .venv, and the package in editable mode with its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(dataset-fashion-mnist)          # full Fashion-MNIST, offline, in IDX format
apt_packages+=(postgresql)                     # `softmax-lab server`, the team store (and its tests)
if [[ "${SOFTMAX_LAB_BROWSER:-0}" == 1 ]]; then
  apt_packages+=(chromium)                     # the UI test's headless browser (Playwright drives it)
fi
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: please install ${missing[*]} (apt-get install ${missing[*]}); continuing" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
echo "setup: done (.venv); activate with: . .venv/bin/activate"
