"""Qwen2.5-VL on the unmodified transformers classes (>= 5.18).

How the upstream class builds its inputs (transformers 5.24, `modeling_qwen2_5_vl.py`):
- the video processor folds 2 frames into one temporal patch (a *unit*); the vision tower attends
  within one unit only, so encoding a group of units alone gives exactly the full-video features;
- `<|video_pad|>` x (T * h * w / merge^2) placeholders sit between `<|vision_start|>` and
  `<|vision_end|>`; `forward` accepts precomputed encoder outputs as `mm_encoder_outputs`;
- M-RoPE positions (t, h, w): unit u at t = start + floor(u * tokens_per_second * second_per_grid),
  rows and columns at start + index; text after the video continues from the largest video position
  + 1 in the authors' code and transformers 4.x, but from start + max(h, w) since transformers 5.3.
  We compute positions ourselves (`position_rule`) and pass them explicitly as (3, 1, L);
  `generate()` keeps explicit positions and adds 1 per decoded token.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from ..errors import NoVideoError, UnsupportedInputError
from ..layout import VideoLayout
from ..registry import ADAPTERS
from .base import ModelAdapter, PromptParts, execution_device


@ADAPTERS.register(
    "qwen2_5_vl",
    model_classes=("Qwen2_5_VLForConditionalGeneration",),
    summary="Qwen2.5-VL (3-D M-RoPE, frame pairs)",
)
class Qwen2_5_VLAdapter(ModelAdapter):
    frames_per_unit = 2

    def __init__(self, model: Any, *positions: str) -> None:
        super().__init__(model, *positions)
        config = model.config
        self.video_token_id = config.video_token_id
        self.merge = config.vision_config.spatial_merge_size
        self.patch_size = config.vision_config.patch_size
        self.frames_per_unit = config.vision_config.temporal_patch_size
        self.tokens_per_second = getattr(config.vision_config, "tokens_per_second", 1)

    # --- inputs --------------------------------------------------------------------------------
    def pop_video_inputs(self, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                 torch.Tensor, Any, tuple[int, int, int]]:
        """Pop the Qwen-family video keys and check them: one unpadded prompt, one video, no images.

        Returns (ids (L,), placeholder runs (R, 2), pixel rows, grid (1, 3), second_per_grid_ts or None, (t, h, w)).
        """
        input_ids = inputs.pop("input_ids", None)
        attention_mask = inputs.pop("attention_mask", None)
        pixels = inputs.pop("pixel_values_videos", None)
        grid = inputs.pop("video_grid_thw", None)
        second_per_grid = inputs.pop("second_per_grid_ts", None)
        inputs.pop("mm_token_type_ids", None)
        if inputs.get("pixel_values") is not None:
            raise UnsupportedInputError("images together with a video are not supported by the selector stage")
        ids = self.check_single_prompt(input_ids, attention_mask)
        if pixels is None or grid is None:
            raise NoVideoError("no video in the inputs: pixel_values_videos and video_grid_thw are required")
        runs = self.placeholder_runs(ids)
        if grid.shape[0] != 1:
            raise UnsupportedInputError(f"one video per prompt is supported; got {grid.shape[0]}")
        t, h, w = (int(x) for x in grid[0])
        # the model itself fails on such a grid; the selection would read it as fewer tokens and answer anyway
        if h % self.merge or w % self.merge or pixels.shape[0] != t * h * w:
            raise UnsupportedInputError(
                f"video_grid_thw {[t, h, w]} with {pixels.shape[0]} pixel rows: expected a height and width divisible "
                f"by the spatial merge size {self.merge} and t * h * w rows, as the processor writes them"
            )
        return ids, runs, pixels, grid, second_per_grid, (t, h, w)

    def split_inputs(self, inputs: dict[str, Any]) -> tuple[PromptParts, VideoLayout, torch.Tensor]:
        ids, runs, pixels, _, second_per_grid, (t, h, w) = self.pop_video_inputs(inputs)
        start, stop = int(runs[0, 0]), int(runs[-1, 1])
        if len(runs) != 1 or stop - start != t * h * w // self.merge**2:
            raise UnsupportedInputError(
                f"video placeholders must be one contiguous run of {t * h * w // self.merge**2} tokens; "
                f"found {int((runs[:, 1] - runs[:, 0]).sum())} in {len(runs)} run(s) within [{start}, {stop})"
            )
        seconds = 1.0 if second_per_grid is None else second_per_grid[0]
        layout = VideoLayout(
            num_units=t, grid_h=h // self.merge, grid_w=w // self.merge, frames_per_unit=self.frames_per_unit,
            time_interval=float(torch.as_tensor(seconds, dtype=torch.float32) * self.tokens_per_second),
        )
        return PromptParts(ids[:start], ids[stop:]), layout, pixels

    def unit_pixels(self, pixels: torch.Tensor, layout: VideoLayout, units: torch.Tensor) -> dict[str, Any]:
        h, w = layout.grid_h * self.merge, layout.grid_w * self.merge
        rows = (units[:, None] * (h * w) + torch.arange(h * w)[None, :]).flatten()
        return {
            "pixel_values_videos": pixels[rows.to(pixels.device)],
            "video_grid_thw": torch.tensor([[len(units), h, w]]),
        }

    def frames_to_pixels(self, processor: Any, frames: np.ndarray) -> dict[str, Any]:
        out = processor.video_processor(videos=[frames], do_resize=False, do_sample_frames=False,
                                        cap_pixels_per_frame=False, return_tensors="pt")
        return {"pixel_values_videos": out["pixel_values_videos"], "video_grid_thw": out["video_grid_thw"]}

    def frame_size(
        self, processor: Any, height: int, width: int, max_pixels: int | None, num_frames: int
    ) -> tuple[int, int]:
        """(height, width) to decode frames at: the processor's own resize rule, per frame."""
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        size = processor.video_processor.size
        factor = self.patch_size * self.merge
        return smart_resize(height, width, factor=factor, min_pixels=size.shortest_edge,
                            max_pixels=max_pixels or size.longest_edge)

    def layout_for_frames(
        self, num_frames: int, height: int, width: int, sampled_fps: float, frame_indices: tuple[int, ...]
    ) -> VideoLayout:
        factor = self.patch_size * self.merge
        seconds_per_unit = torch.tensor(self.frames_per_unit / sampled_fps, dtype=torch.float32)
        return VideoLayout(
            num_units=num_frames // self.frames_per_unit, grid_h=height // factor, grid_w=width // factor,
            frames_per_unit=self.frames_per_unit, time_interval=float(seconds_per_unit * self.tokens_per_second),
            frame_indices=frame_indices,
        )

    def video_features(self, pixel_inputs: dict[str, Any]) -> Any:
        """The model's own `get_video_features` output for some units, on the vision tower's device."""
        device = execution_device(self.model.model.visual)
        return self.model.model.get_video_features(
            pixel_values_videos=pixel_inputs["pixel_values_videos"].to(device),
            video_grid_thw=pixel_inputs["video_grid_thw"].to(device),
        )

    def encode(self, pixel_inputs: dict[str, Any]) -> torch.Tensor:
        return torch.cat(self.video_features(pixel_inputs).pooler_output, dim=0)

    # --- sequences -----------------------------------------------------------------------------
    def positions(
        self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor
    ) -> torch.Tensor:
        """M-RoPE position ids (3, L) of prefix + the given visual tokens + suffix, each at the position
        it has in the full video; text after the video placed by `self.position_rule`."""
        start = len(prompt.prefix_ids)
        interval = torch.tensor(layout.time_interval, dtype=torch.float32)
        units, cells = layout.unit_of(token_ids), layout.cell_of(token_ids)
        visual = torch.stack([
            (units * interval).long() + start,
            cells // layout.grid_w + start,
            cells % layout.grid_w + start,
        ])
        if self.position_rule == "original":
            last_t = int((torch.tensor(layout.num_units - 1) * interval).long())
            text_start = start + max(last_t, layout.grid_h - 1, layout.grid_w - 1) + 1
        else:  # transformers >= 5.3: `current_pos += max(h, w) // merge`
            text_start = start + max(layout.grid_h, layout.grid_w)
        prefix = torch.arange(start).expand(3, -1)
        suffix = torch.arange(len(prompt.suffix_ids)).expand(3, -1) + text_start
        return torch.cat([prefix, visual, suffix], dim=1)

    def model_inputs(
        self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor, features: torch.Tensor
    ) -> dict[str, Any]:
        placeholders = torch.full((len(token_ids),), self.video_token_id, dtype=prompt.prefix_ids.dtype)
        ids = torch.cat([prompt.prefix_ids, placeholders, prompt.suffix_ids])[None]
        positions = self.positions(prompt, layout, token_ids)[:, None, :]
        device = self.device
        return {
            "input_ids": ids.to(device),
            "attention_mask": torch.ones_like(ids, device=device),
            "position_ids": positions.to(device),
            "mm_encoder_outputs": {"video": BaseModelOutputWithPooling(pooler_output=(features.to(device),))},
        }
