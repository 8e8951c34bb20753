"""Tests of the LLaVA-NeXT codebase integration; run in the second venv (transformers 4.51.3 + llavaction):
`bash scripts/test_llava.sh`. The main suite (transformers 5.x) does not collect this directory."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# Nothing is downloaded in tests: the forks' `conversation.py` tries to fetch a Llama-3 tokenizer at import
# (and waits on the network before giving up); offline it gives up at once.
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def vision_dir(tmp_path_factory):
    from tiny_llava import save_vision_tower

    return save_vision_tower(tmp_path_factory.mktemp("clip-tiny"))
