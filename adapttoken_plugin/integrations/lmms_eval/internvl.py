"""`adapttoken_internvl`: InternVL in its transformers format (`InternVLForConditionalGeneration`, the `-hf`
checkpoints such as `OpenGVLab/InternVL3-8B-hf`) under lmms-eval.

Of lmms-eval's `internvl_hf` arguments it honours `num_frames` (= `adapttoken_max_frames`) and `fps`
(= `adapttoken_fps`); each frame is one tile (the adapter refuses multi-tile frames, so
`min_patches` / `max_patches` are not accepted).
"""

from __future__ import annotations

from .model import AdaptTokenLMM


class AdaptTokenInternVL(AdaptTokenLMM):
    """InternVL (-hf) with AdaptToken selection; `--model_args pretrained=OpenGVLab/InternVL3-8B-hf,adapttoken_...`."""

    model_id = "adapttoken_internvl"
    model_class = "InternVLForConditionalGeneration"
    config_aliases = {"num_frames": "max_frames", "fps": "fps"}
