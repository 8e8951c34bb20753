#!/usr/bin/env bash
# Fresh-machine entry point: `bash scripts/dev.sh demo` or `bash scripts/dev.sh test`.
# Creates .venv (once), installs the pinned torch/torchvision pair first (a CUDA build that also
# runs on the CPU), then this package with its dev and eval (lmms-eval) extras, then runs the demo or the
# test suites (`test` alone: `ruff check .`, tests/ here, then tests_llava/ in .venv-llava via
# scripts/test_llava.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${ADAPTTOKEN_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
# (the entry-point check reinstalls a venv made before the lmms-eval models were registered, the requirement check
# one made before torchcodec joined the extras: it has no wheel everywhere, so its import is not the test)
if ! "$PY" -c "import adapttoken_plugin, torch, torchvision, transformers, hypothesis, ruff, av, deepspeed, accelerate, lmms_eval
import importlib.metadata as m
assert m.entry_points(group='lmms_eval.models', name='adapttoken')
assert any(r.startswith('torchcodec') for r in m.requires('adapttoken'))" >/dev/null 2>&1; then
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q -c constraints.txt torch torchvision
    # deepspeed is an sdist that needs torch at build time: it comes after the pinned pair
    "$PY" -m pip install -q -c constraints.txt -e ".[dev,deepspeed,eval]"
fi
case "${1:-test}" in
    demo) shift; exec "$VENV/bin/adapttoken" demo "$@" ;;
    test) shift
        # torchcodec loads FFmpeg from the library path; where the system has none, PyAV's bundled copy stands
        # in, so that the suite tests the torchcodec backend too (the loader reads this when python starts)
        FFMPEG_PATH=$("$PY" scripts/torchcodec_ffmpeg.py "$VENV/torchcodec-ffmpeg")
        if [ -n "$FFMPEG_PATH" ]; then export LD_LIBRARY_PATH="$FFMPEG_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
        if [ $# -gt 0 ]; then exec "$PY" -m pytest -q "$@"; fi  # arguments: tests/ only, as pytest takes them
        "$PY" -m ruff check .  # lint (pyproject.toml settings) first: seconds, before minutes of tests
        "$PY" -m pytest -q
        exec bash scripts/test_llava.sh ;;  # the LLaVA-NeXT fork suite, in its own venv (transformers 4.x)
    *) echo "usage: bash scripts/dev.sh [demo|test] [args...]" >&2; exit 2 ;;
esac
