#!/usr/bin/env bash
# Sets up everything GenieRedux needs, idempotently: .venv, packages, ROM import.
# Run by `python run.py ...` when .venv is missing or pyproject.toml changed; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
stamp=.venv/.installed-$(cat pyproject.toml install.sh | sha1sum | cut -c1-12)
if [ -f "$stamp" ]; then exit 0; fi

if [ ! -x .venv/bin/python ]; then
  echo "[install] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# Pinned on its own first: a looser range would pull a multi-GB CUDA wheel on a CPU-only machine
# that has the 2.13.0 CPU wheel cached; on a GPU machine the same pin gets the CUDA build.
.venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}" \
  || .venv/bin/python -m pip install -q "torch>=2.4,<2.15"
echo "[install] installing genie-redux and its dependencies"
.venv/bin/python -m pip install -q -e ".[dev]"
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  # the player's browser test drives headless Chromium (it fails, not skips, without it)
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[install] installing chromium + chromium-driver (apt-get) for the player's browser test"
    apt-get update -q && apt-get install -y -q chromium chromium-driver >/dev/null
  elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "[install] installing chromium + chromium-driver (sudo apt-get) for the player's browser test"
    sudo -n apt-get update -q && sudo -n apt-get install -y -q chromium chromium-driver >/dev/null
  else
    echo "[install] note: install chromium and chromium-driver for the player's browser test (tests/test_player_browser.py)"
  fi
fi
echo "[install] importing bundled ROMs into stable-retro"
.venv/bin/python run.py roms import
rm -f .venv/.installed-*
touch "$stamp"
echo "[install] done"
