"""LLaVA-OneVision and the transformers port of LLaVA-Video on the unmodified class (>= 5.18).

How the upstream class builds its inputs (transformers 5.24, `modeling_llava_onevision.py`):
- `pixel_values_videos` (1, F, 3, S, S); `get_video_features` encodes every frame alone (SigLIP,
  projector), resizes its grid bilinearly to ceil(side / 2) x ceil(side / 2) (27 x 27 -> 14 x 14 = 196
  tokens) and, since transformers 5.18, appends the `image_newline` parameter once per video:
  `pooler_output` (1, F * tokens + 1, D);
- the processor writes `<video>` x (F * tokens + 1), one run; `forward` scatters the features into it;
- the text model is a Qwen2 with 1-D RoPE.

A unit is one frame. The newline is the video's last visual token: always kept, last, never ranked
(`trailing_video_tokens = 1`, appended in `encoder_outputs`). Positions: contiguous by default, or
each token's index in the full sequence (`positions_1d="original"`, passed with `attention_mask`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..errors import NoVideoError, UnsupportedInputError
from ..layout import VideoLayout
from ..registry import ADAPTERS
from .base import PromptParts, execution_device
from .one_dim import OneDimAdapter


@ADAPTERS.register(
    "llava_onevision",
    model_classes=("LlavaOnevisionForConditionalGeneration",),
    summary="LLaVA-OneVision / LLaVA-Video-hf (1-D RoPE, 1 frame per unit, one newline token per video)",
)
class LlavaOnevisionAdapter(OneDimAdapter):
    frames_per_unit = 1
    trailing_video_tokens = 1

    def __init__(self, model: Any, *positions: str) -> None:
        super().__init__(model, *positions)
        config = model.config
        self.video_token_id = config.video_token_id
        self.grid = self.frame_grid(config)

    @staticmethod
    def frame_grid(config: Any) -> int:
        """Tokens per frame side after the family's pooling (`apply_pooling`: ceil(side / 2))."""
        return math.ceil(config.vision_config.image_size // config.vision_config.patch_size / 2)

    def split_inputs(self, inputs: dict[str, Any]) -> tuple[PromptParts, VideoLayout, torch.Tensor]:
        input_ids = inputs.pop("input_ids", None)
        attention_mask = inputs.pop("attention_mask", None)
        pixels = inputs.pop("pixel_values_videos", None)
        inputs.pop("image_sizes_videos", None)
        if inputs.get("pixel_values") is not None:
            raise UnsupportedInputError("images together with a video are not supported by the selector stage")
        ids = self.check_single_prompt(input_ids, attention_mask)
        if pixels is None:
            raise NoVideoError("no video in the inputs: pixel_values_videos is required")
        if pixels.ndim != 5 or pixels.shape[0] != 1:
            raise UnsupportedInputError(f"one video (1, frames, 3, H, W) per prompt is supported; got "
                                        f"pixel_values_videos of shape {tuple(pixels.shape)}")
        runs = self.placeholder_runs(ids)
        frames, per_frame = pixels.shape[1], self.grid * self.grid
        expected = frames * per_frame + self.trailing_video_tokens
        start, stop = int(runs[0, 0]), int(runs[-1, 1])
        if len(runs) != 1 or stop - start != expected:
            raise UnsupportedInputError(
                f"video placeholders must be one contiguous run of {expected} tokens ({frames} frames x "
                f"{per_frame} + {self.trailing_video_tokens}); found {int((runs[:, 1] - runs[:, 0]).sum())} "
                f"in {len(runs)} run(s)"
            )
        layout = VideoLayout(num_units=frames, grid_h=self.grid, grid_w=self.grid, frames_per_unit=1)
        return PromptParts(ids[:start], ids[stop:]), layout, pixels

    def unit_pixels(self, pixels: torch.Tensor, layout: VideoLayout, units: torch.Tensor) -> dict[str, Any]:
        return {"pixel_values_videos": pixels[:, units.to(pixels.device)]}

    def frames_to_pixels(self, processor: Any, frames: np.ndarray) -> dict[str, Any]:
        out = processor.video_processor(videos=[frames], do_sample_frames=False, return_tensors="pt")
        return {"pixel_values_videos": out["pixel_values_videos"]}

    def frame_size(
        self, processor: Any, height: int, width: int, max_pixels: int | None, num_frames: int
    ) -> tuple[int, int]:
        """The video processor's target size (a fixed height x width, or its shortest edge at the frame's
        aspect ratio when it resizes then crops); the processor then resizes / crops as usual."""
        size = processor.video_processor.size
        if size.height is not None and size.width is not None:
            return size.height, size.width
        scale = size.shortest_edge / min(height, width)
        return max(size.shortest_edge, round(height * scale)), max(size.shortest_edge, round(width * scale))

    def layout_for_frames(
        self, num_frames: int, height: int, width: int, sampled_fps: float, frame_indices: tuple[int, ...]
    ) -> VideoLayout:
        return VideoLayout(num_units=num_frames, grid_h=self.grid, grid_w=self.grid, frames_per_unit=1,
                           frame_indices=frame_indices)

    def encode(self, pixel_inputs: dict[str, Any]) -> torch.Tensor:
        tower = self.model.model.vision_tower
        out = self.model.model.get_video_features(pixel_values_videos=pixel_inputs["pixel_values_videos"].to(
            execution_device(tower)))
        features = out.pooler_output[0]
        return features[:len(features) - self.trailing_video_tokens]

    def encoder_outputs(self, features: torch.Tensor) -> Any:
        if self.trailing_video_tokens:  # the newline get_video_features appends (one per video)
            newline = self.model.model.image_newline.to(features.device, features.dtype)
            features = torch.cat([features, newline[None]])
        return super().encoder_outputs(features)
