"""`adapttoken_qwen2_5_vl`: Qwen2.5-VL (`Qwen2_5_VLForConditionalGeneration`) under lmms-eval.

Of lmms-eval's `qwen2_5_vl` arguments it honours `max_num_frames` (= `adapttoken_max_frames`), `fps`
(= `adapttoken_fps`) and `min_pixels` / `max_pixels` (the processor's per-frame pixel range, which
the streaming pipeline resizes frames to while decoding), besides the shared ones of `AdaptTokenLMM`.
"""

from __future__ import annotations

from .model import AdaptTokenLMM


class AdaptTokenQwen2_5_VL(AdaptTokenLMM):
    """Qwen2.5-VL with AdaptToken selection; `--model_args pretrained=Qwen/Qwen2.5-VL-7B-Instruct,adapttoken_...`."""

    model_id = "adapttoken_qwen2_5_vl"
    model_class = "Qwen2_5_VLForConditionalGeneration"
    config_aliases = {"max_num_frames": "max_frames", "fps": "fps"}
    processor_args = ("min_pixels", "max_pixels")
