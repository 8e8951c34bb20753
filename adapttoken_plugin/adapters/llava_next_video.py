"""LLaVA-NeXT-Video on the unmodified class (>= 5.18): the LLaVA-OneVision contract without a newline.

transformers 5.24, `modeling_llava_next_video.py`: `get_video_features` encodes every frame alone
(CLIP, CLS dropped for the `default` strategy), pools its grid with stride `spatial_pool_stride`
(24 x 24 -> 12 x 12 = 144 tokens) and projects it: `pooler_output` (1, F * tokens, D), no newline;
`<video>` x (F * tokens) placeholders; Llama text model with 1-D RoPE.
"""

from __future__ import annotations

from typing import Any

from ..registry import ADAPTERS
from .llava_onevision import LlavaOnevisionAdapter


@ADAPTERS.register(
    "llava_next_video",
    model_classes=("LlavaNextVideoForConditionalGeneration",),
    summary="LLaVA-NeXT-Video (1-D RoPE, 1 frame per unit)",
)
class LlavaNextVideoAdapter(LlavaOnevisionAdapter):
    trailing_video_tokens = 0

    @staticmethod
    def frame_grid(config: Any) -> int:
        return config.vision_config.image_size // config.vision_config.patch_size // config.spatial_pool_stride
