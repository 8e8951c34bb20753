"""Run in a subprocess by test_patch.py, with a patched copy of the fork first on sys.path:
load a saved tiny checkpoint through the fork's own `load_pretrained_model`, with and without the flag."""

import json
import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(1, str(Path(__file__).parent))

import llavaction  # noqa: E402
from llavaction.model.builder import load_pretrained_model  # noqa: E402
from tiny_llava import prompt_ids, video  # noqa: E402

from adapttoken_plugin.integrations import llava  # noqa: E402

checkpoint = sys.argv[1]
report = {"fork": llavaction.__file__}
for name, overwrite in (("flag", {"adapttoken": {"budget": 8, "frames_per_group": 2}}), ("no_flag", {})):
    _, model, _, _ = load_pretrained_model(checkpoint, None, "llava_qwen", device_map="auto", torch_dtype="bfloat16",
                                           attn_implementation="sdpa", overwrite_config=overwrite)
    report[name] = {"enabled": llava.is_enabled(model), "instance_generate": "generate" in model.__dict__}
    model.generate(prompt_ids(), images=[video(4).bfloat16()], modalities=["video"], max_new_tokens=2)
    trace = getattr(model, "adapttoken_trace", None)
    report[name]["kept"] = None if trace is None else trace.kept_tokens
print(json.dumps(report))
