#!/usr/bin/env bash
# Tests of the LLaVA-NeXT codebase integration (tests_llava/) in a second venv, .venv-llava: the LLaVA-NeXT
# forks need transformers 4.x, the main suite runs on 5.x. Installs the pinned torch pair, transformers
# 4.51.3, the PyPI fork `llavaction` without its extras (it imports with einops beside transformers), this
# package without its dependencies (its install_requires name transformers 5), lmms-eval 0.7.3 and the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-llava
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import adapttoken_plugin, llavaction, torchvision, einops, accelerate, pytest, hypothesis, lmms_eval, decord
import transformers as t
assert t.__version__ == '4.51.3'" >/dev/null 2>&1; then
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q -c constraints.txt torch torchvision
    # accelerate: the fork's load_pretrained_model loads with low_cpu_mem_usage (tests_llava/test_patch.py)
    "$PY" -m pip install -q transformers==4.51.3 einops==0.8.2 accelerate==1.15.0 "pytest>=8" "hypothesis>=6.100"
    # lmms-eval for adapttoken_llava_vid on the real llava_vid (decord: llava_vid reads videos with it; filelock 4
    # removed what lmms-eval imports); the torch pair named again so pip keeps it
    "$PY" -m pip install -q lmms-eval==0.7.3 filelock==3.32.7 decord==0.6.0 transformers==4.51.3 torch==2.14.1 \
        torchvision==0.29.1
    "$PY" -m pip install -q --no-deps llavaction==0.0.1
    "$PY" -m pip install -q --no-deps -e .
fi
exec "$PY" -m pytest -q tests_llava "$@"
