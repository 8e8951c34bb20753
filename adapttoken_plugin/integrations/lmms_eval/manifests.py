"""The `lmms_eval.models` entry point: which lmms-eval model id is which class, by import path.

lmms-eval 0.7.3 resolves `--model NAME` through `ModelRegistryV2`, which calls this function when it
builds its registry (before any model is chosen). The classes are imported only when their id is
asked for, so this module imports no torch, no transformers and none of the model modules.
"""

from __future__ import annotations

from typing import Any

_PACKAGE = "adapttoken_plugin.integrations.lmms_eval"

MODEL_CLASSES: dict[str, str] = {
    "adapttoken_qwen2_5_vl": f"{_PACKAGE}.qwen2_5_vl.AdaptTokenQwen2_5_VL",
    "adapttoken_qwen3_vl": f"{_PACKAGE}.qwen3_vl.AdaptTokenQwen3_VL",
    "adapttoken_internvl": f"{_PACKAGE}.internvl.AdaptTokenInternVL",
    "adapttoken_llava_onevision": f"{_PACKAGE}.llava_onevision.AdaptTokenLlavaOneVision",
    "adapttoken_llava_vid": f"{_PACKAGE}.llava_vid.AdaptTokenLlavaVid",
}


def manifests() -> list[Any]:
    """One `ModelManifest` per id in MODEL_CLASSES (simple-type classes: lmms-eval hands them the task's prompt)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return [ModelManifest(model_id=model_id, simple_class_path=path) for model_id, path in MODEL_CLASSES.items()]
