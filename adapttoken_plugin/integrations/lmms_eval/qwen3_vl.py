"""`adapttoken_qwen3_vl`: Qwen3-VL (`Qwen3VLForConditionalGeneration`) under lmms-eval.

Of lmms-eval's `qwen3_vl` arguments it honours `max_num_frames` (= `adapttoken_max_frames`), `fps`
(= `adapttoken_fps`) and `min_pixels` / `max_pixels` (the processor's per-frame pixel range).
"""

from __future__ import annotations

from .model import AdaptTokenLMM


class AdaptTokenQwen3_VL(AdaptTokenLMM):
    """Qwen3-VL with AdaptToken selection; `--model_args pretrained=Qwen/Qwen3-VL-8B-Instruct,adapttoken_...`."""

    model_id = "adapttoken_qwen3_vl"
    model_class = "Qwen3VLForConditionalGeneration"
    config_aliases = {"max_num_frames": "max_frames", "fps": "fps"}
    processor_args = ("min_pixels", "max_pixels")
