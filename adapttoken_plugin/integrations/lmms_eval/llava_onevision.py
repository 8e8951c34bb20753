"""`adapttoken_llava_onevision`: LLaVA-OneVision in its transformers format
(`LlavaOnevisionForConditionalGeneration`: `llava-hf/llava-onevision-qwen2-7b-ov-hf`, and the
`-hf` LLaVA-Video ports) under lmms-eval.

Of lmms-eval's `llava_onevision` arguments it honours `max_frames_num` (= `adapttoken_max_frames`);
the LLaVA-NeXT codebase checkpoints (`lmms-lab/...`, not transformers format) are `adapttoken_llava_vid`.
"""

from __future__ import annotations

from .model import AdaptTokenLMM


class AdaptTokenLlavaOneVision(AdaptTokenLMM):
    """LLaVA-OneVision (-hf) with AdaptToken selection; `--model_args pretrained=llava-hf/...,adapttoken_...`."""

    model_id = "adapttoken_llava_onevision"
    model_class = "LlavaOnevisionForConditionalGeneration"
    config_aliases = {"max_frames_num": "max_frames"}
