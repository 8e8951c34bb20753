#!/usr/bin/env bash
# Fresh-machine entry point: `bash scripts/dev.sh demo` or `bash scripts/dev.sh test`.
# Creates .venv (once), installs the pinned torch/torchvision pair first (a CUDA build that also
# runs on the CPU), then this package with its dev extras, then runs the demo or the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${ADAPTTOKEN_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import adapttoken_plugin, torch, torchvision, transformers, hypothesis, av, deepspeed, accelerate, \
        lmms_eval" >/dev/null 2>&1; then
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q -c constraints.txt torch torchvision
    # deepspeed is an sdist that needs torch at build time: it comes after the pinned pair (tensor-parallel tests;
    # lmms-eval for the test of its document sharding under tensor parallelism)
    "$PY" -m pip install -q -c constraints.txt -e ".[dev,deepspeed,eval]"
fi
case "${1:-test}" in
    demo) shift; exec "$VENV/bin/adapttoken" demo "$@" ;;
    test) shift; exec "$PY" -m pytest -q "$@" ;;
    *) echo "usage: bash scripts/dev.sh [demo|test] [args...]" >&2; exit 2 ;;
esac
