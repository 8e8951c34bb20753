"""Qwen2-VL on the unmodified transformers class (>= 5.18): Qwen2.5-VL without time scaling.

Same inputs, vision tower, placeholders and M-RoPE as Qwen2.5-VL (see `qwen2_5_vl.py`), except that
the temporal position of a frame pair is its index: `Qwen2VLModel.get_rope_index` (transformers 5.24)
calls `get_vision_position_ids` with the default `time_interval=1`, the vision config has no
`tokens_per_second` and the processor returns no `second_per_grid_ts`. Text after the video follows
`position_rule` as for Qwen2.5-VL (`original`: after the largest video position; `transformers`:
start + max(h, w)).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ..layout import VideoLayout
from ..registry import ADAPTERS
from .base import PromptParts
from .qwen2_5_vl import Qwen2_5_VLAdapter


@ADAPTERS.register(
    "qwen2_vl",
    model_classes=("Qwen2VLForConditionalGeneration",),
    summary="Qwen2-VL (3-D M-RoPE, frame pairs, t = pair index)",
)
class Qwen2VLAdapter(Qwen2_5_VLAdapter):
    def split_inputs(self, inputs: dict[str, Any]) -> tuple[PromptParts, VideoLayout, torch.Tensor]:
        prompt, layout, pixels = super().split_inputs(inputs)
        return prompt, dataclasses.replace(layout, time_interval=1.0), pixels

    def layout_for_frames(
        self, num_frames: int, height: int, width: int, sampled_fps: float, frame_indices: tuple[int, ...]
    ) -> VideoLayout:
        layout = super().layout_for_frames(num_frames, height, width, sampled_fps, frame_indices)
        return dataclasses.replace(layout, time_interval=1.0)
