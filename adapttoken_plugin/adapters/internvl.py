"""InternVL (the transformers-native `-hf` checkpoints) on the unmodified class (>= 5.18).

How the upstream class builds its inputs (transformers 5.24, `modeling_internvl.py`,
`processing_internvl.py`):
- the model has no video input: the processor turns a video into frames, writes each frame as
  `Frame{i}: <img>` + `<IMG_CONTEXT>` x image_seq_length + `</img>` (frames joined by a newline) and
  puts the frames into `pixel_values` (F, 3, S, S) in text order, as images;
- `get_image_features` encodes each frame alone (vision tower, pixel shuffle, projector):
  image_seq_length tokens per frame, raster order, no temporal merging, so a unit is one frame;
- the text model is a Qwen2 with 1-D RoPE; `forward` takes precomputed features as
  `mm_encoder_outputs={"image": ...}`.

So a call is selected when it carries `pixel_values`, every `<img>` block taken as one frame (a
prompt of single-tile images is treated as a video of those images; multi-tile images are refused).
A frame with no kept token is dropped with its label, `<img>` and `</img>`; the others keep their
original labels. Positions: contiguous by default, or each token's index in the full sequence
(`positions_1d="original"`, passed with `attention_mask`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..errors import NoVideoError, UnsupportedInputError, UnsupportedModelError
from ..layout import VideoLayout
from ..registry import ADAPTERS
from .base import PromptParts, execution_device
from .one_dim import OneDimAdapter


@ADAPTERS.register(
    "internvl",
    model_classes=("InternVLForConditionalGeneration",),
    summary="InternVL-hf (1-D RoPE, frames as images, 1 frame per unit, frame labels)",
)
class InternVLAdapter(OneDimAdapter):
    has_unit_text = True
    frames_per_unit = 1
    video_input_key = "pixel_values"
    encoder_output_key = "image"

    def __init__(self, model: Any, *positions: str) -> None:
        super().__init__(model, *positions)
        config = model.config
        self.video_token_id = config.image_token_id
        self.tokens_per_frame = config.image_seq_length
        self.grid = math.isqrt(self.tokens_per_frame)
        if self.grid * self.grid != self.tokens_per_frame:
            raise UnsupportedModelError(f"InternVL image_seq_length={self.tokens_per_frame} is not a square grid")

    def split_inputs(self, inputs: dict[str, Any]) -> tuple[PromptParts, VideoLayout, torch.Tensor]:
        input_ids = inputs.pop("input_ids", None)
        attention_mask = inputs.pop("attention_mask", None)
        pixels = inputs.pop("pixel_values", None)
        ids = self.check_single_prompt(input_ids, attention_mask)
        if pixels is None:
            raise NoVideoError("no video in the inputs: InternVL takes its frames as pixel_values")
        runs = self.placeholder_runs(ids)
        lengths = runs[:, 1] - runs[:, 0]
        if len(runs) != pixels.shape[0] or bool((lengths != self.tokens_per_frame).any()):
            raise UnsupportedInputError(
                f"expected one block of {self.tokens_per_frame} image tokens per frame for the {pixels.shape[0]} "
                f"frames in pixel_values (as the processor writes a video); found {len(runs)} block(s) of "
                f"{lengths.tolist()} (images of several tiles are not supported)"
            )
        prompt = self.unit_text(ids, runs)
        layout = VideoLayout(num_units=len(runs), grid_h=self.grid, grid_w=self.grid, frames_per_unit=1)
        return prompt, layout, pixels

    def unit_pixels(self, pixels: torch.Tensor, layout: VideoLayout, units: torch.Tensor) -> dict[str, Any]:
        return {"pixel_values": pixels[units.to(pixels.device)]}

    def frames_to_pixels(self, processor: Any, frames: np.ndarray) -> dict[str, Any]:
        out = processor.video_processor(videos=[frames], do_sample_frames=False, return_tensors="pt")
        return {"pixel_values": out["pixel_values_videos"].flatten(0, 1)}

    def frame_size(
        self, processor: Any, height: int, width: int, max_pixels: int | None, num_frames: int
    ) -> tuple[int, int]:
        """The video processor's fixed frame size (frames are not tiled)."""
        size = processor.video_processor.size
        return size.height, size.width

    def layout_for_frames(
        self, num_frames: int, height: int, width: int, sampled_fps: float, frame_indices: tuple[int, ...]
    ) -> VideoLayout:
        return VideoLayout(num_units=num_frames, grid_h=self.grid, grid_w=self.grid, frames_per_unit=1,
                           frame_indices=frame_indices)

    def video_prompt(self, processor: Any, rendered: str, layout: VideoLayout, video_fps: float) -> PromptParts:
        """The processor's own `Frame{i}: <img>...</img>` lines, one per decoded frame."""
        frames = np.empty((layout.num_units, 0))  # replace_video_token reads the frame count only
        expansion = processor.replace_video_token({"pixel_values_videos": [frames]}, 0)
        return self.unit_prompt(processor, rendered, expansion, processor.image_token)

    def encode(self, pixel_inputs: dict[str, Any]) -> torch.Tensor:
        tower = self.model.model.vision_tower
        out = self.model.model.get_image_features(pixel_values=pixel_inputs["pixel_values"].to(execution_device(tower)))
        return out.pooler_output.flatten(0, 1)
