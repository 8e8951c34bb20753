"""lmms-eval finds the adapttoken_* models through the installed entry point, without importing torch."""

import json
import subprocess
import sys

import pytest
from lmms_eval.api.model import lmms
from lmms_eval.models import MODEL_REGISTRY_V2

from adapttoken_plugin.integrations.lmms_eval.manifests import MODEL_CLASSES

LOADABLE = ("adapttoken_qwen2_5_vl", "adapttoken_qwen3_vl", "adapttoken_internvl", "adapttoken_llava_onevision")

RESOLVE_ALL = """
import json, sys
from lmms_eval.models import MODEL_REGISTRY_V2
resolved = {name: [r.model_type, r.class_path] for name in MODEL_REGISTRY_V2.list_model_names()
            if name.startswith("adapttoken_") for r in [MODEL_REGISTRY_V2.resolve(name)]}
heavy = sorted(m for m in ("torch", "transformers", "adapttoken_plugin.pipeline") if m in sys.modules)
print(json.dumps({"resolved": resolved, "heavy": heavy}))
"""


def test_registry_resolves_every_id_without_importing_torch():
    out = subprocess.run([sys.executable, "-c", RESOLVE_ALL], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["resolved"] == {name: ["simple", path] for name, path in MODEL_CLASSES.items()}
    assert report["resolved"]["adapttoken_llava_vid"] == [
        "simple", "adapttoken_plugin.integrations.lmms_eval.llava_vid.AdaptTokenLlavaVid"]


@pytest.mark.parametrize("model_id", LOADABLE)
def test_resolved_class_is_a_simple_lmms_model_for_its_id(model_id):
    cls = MODEL_REGISTRY_V2.get_model_class(model_id)  # imports it and checks it against lmms and is_simple
    assert issubclass(cls, lmms) and cls.is_simple and cls.model_id == model_id


def test_builtin_ids_are_left_alone():
    assert MODEL_REGISTRY_V2.resolve("qwen2_5_vl").class_path == "lmms_eval.models.chat.qwen2_5_vl.Qwen2_5_VL"
    assert MODEL_REGISTRY_V2.resolve("llava_vid").class_path == "lmms_eval.models.simple.llava_vid.LlavaVid"
