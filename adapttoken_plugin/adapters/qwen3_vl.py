"""Qwen3-VL on the unmodified transformers class (>= 5.18).

How the upstream class builds its inputs (transformers 5.24, `modeling_qwen3_vl.py`,
`processing_qwen3_vl.py`):
- as in Qwen2.5-VL a unit is a frame pair (temporal patch 2), encoded within itself; patch 16,
  merge 2, so one token per 32 x 32 px per pair;
- the processor writes every unit as its own block, `<{t:.1f} seconds>` + `<|vision_start|>` +
  `<|video_pad|>` x (h * w / 4) + `<|vision_end|>`, t the mean time of the pair's frames (the chat
  template's own `<|vision_start|>` / `<|vision_end|>` stay around all blocks);
- `get_video_features` returns `pooler_output` and per-layer `deepstack_features`, which the text
  model adds to the hidden states at the visual positions after its first layers: both are sliced
  with the same kept indices. They travel through the selection stage as one feature row
  [main | deepstack level 0 | level 1 | ...] per token; de-duplication compares the main features only
  (`VideoLayout.similarity_dims`), like every other family's projector output;
- M-RoPE (interleaved): `get_rope_index` splits the grid into one `[1, h, w]` grid per unit; a unit's
  tokens sit at (p, p + row, p + col) and the next text starts at p + max(h, w), p the running
  position. Time lives in the timestamp text, so the authors' rule and transformers' agree and
  `position_rule` changes nothing here.

A unit with no kept token is dropped with its timestamp and its vision_start/end: the sequence stays
one the processor could have produced for the kept frame pairs, and every remaining token keeps the
position it has in the full sequence (passed explicitly as (3, 1, L)).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ..errors import UnsupportedInputError
from ..layout import VideoLayout
from ..registry import ADAPTERS
from .base import PromptParts
from .qwen2_5_vl import Qwen2_5_VLAdapter


@ADAPTERS.register(
    "qwen3_vl",
    model_classes=("Qwen3VLForConditionalGeneration",),
    summary="Qwen3-VL (interleaved M-RoPE, frame pairs, timestamp text per pair, DeepStack)",
)
class Qwen3VLAdapter(Qwen2_5_VLAdapter):
    has_unit_text = True

    def __init__(self, model: Any, *positions: str) -> None:
        super().__init__(model, *positions)
        self.feature_dim = model.config.vision_config.out_hidden_size

    # --- inputs --------------------------------------------------------------------------------
    def split_inputs(self, inputs: dict[str, Any]) -> tuple[PromptParts, VideoLayout, torch.Tensor]:
        ids, runs, pixels, grid, _, (t, h, w) = self.pop_video_inputs(inputs)
        per_unit = h * w // self.merge**2
        lengths = runs[:, 1] - runs[:, 0]
        if len(runs) != t or bool((lengths != per_unit).any()):
            raise UnsupportedInputError(
                f"expected {t} blocks of {per_unit} video placeholders (one per frame pair, as the Qwen3-VL "
                f"processor writes them); found {len(runs)} of {lengths.tolist()}"
            )
        prompt = self.unit_text(ids, runs)
        layout = VideoLayout(num_units=t, grid_h=h // self.merge, grid_w=w // self.merge,
                             frames_per_unit=self.frames_per_unit, similarity_dims=self.feature_dim)
        return prompt, layout, pixels

    def frame_size(
        self, processor: Any, height: int, width: int, max_pixels: int | None, num_frames: int
    ) -> tuple[int, int]:
        """The Qwen3-VL video processor's resize rule: its pixel limit covers the whole clip (all frames), so
        the size depends on the frame count; `max_pixels` (per frame) replaces that limit by
        max_pixels x num_frames."""
        from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize

        size = processor.video_processor.size
        return smart_resize(num_frames, height, width, temporal_factor=self.frames_per_unit,
                            factor=self.patch_size * self.merge, min_pixels=size.shortest_edge,
                            max_pixels=size.longest_edge if max_pixels is None else max_pixels * num_frames)

    def video_prompt(self, processor: Any, rendered: str, layout: VideoLayout, video_fps: float) -> PromptParts:
        """The processor's own per-pair text (`<t seconds>` from the file indices at `video_fps`)."""
        from transformers.video_utils import VideoMetadata

        if layout.frame_indices is None:
            raise UnsupportedInputError("Qwen3-VL's per-frame timestamps need the frames' file indices")
        metadata = VideoMetadata(total_num_frames=len(layout.frame_indices), fps=video_fps,
                                 frames_indices=list(layout.frame_indices))
        one_token_per_unit = torch.tensor([[layout.num_units, self.merge, self.merge]])
        expansion = processor.replace_video_token(
            {"video_grid_thw": one_token_per_unit, "video_metadata": [metadata]}, 0)
        return self.unit_prompt(processor, rendered, expansion, processor.video_token)

    def layout_for_frames(
        self, num_frames: int, height: int, width: int, sampled_fps: float, frame_indices: tuple[int, ...]
    ) -> VideoLayout:
        layout = super().layout_for_frames(num_frames, height, width, sampled_fps, frame_indices)
        # time lives in the timestamp text, not in the positions: no time step (as split_inputs)
        return dataclasses.replace(layout, time_interval=1.0, similarity_dims=self.feature_dim)

    def encode(self, pixel_inputs: dict[str, Any]) -> torch.Tensor:
        """(N, D * (1 + levels)): each token's features, then its DeepStack features level by level."""
        out = self.video_features(pixel_inputs)
        levels = [torch.cat(level, dim=0) for level in out.deepstack_features]
        return torch.cat([torch.cat(out.pooler_output, dim=0), *levels], dim=-1)

    # --- sequences -----------------------------------------------------------------------------
    def positions(
        self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor
    ) -> torch.Tensor:
        """M-RoPE position ids (3, L) of the sequence `kept_sequence` lays out, each token at the position
        it has in the full sequence. The same under both position rules (see the module docstring)."""
        full = self.kept_sequence(prompt, layout, token_ids).full_index
        tpu, advance = layout.tokens_per_unit, max(layout.grid_h, layout.grid_w)
        index_starts = self.unit_starts(prompt, layout, tpu)  # where each unit starts: in the sequence,
        position_starts = self.unit_starts(prompt, layout, advance)  # and in position space
        head_lengths = torch.tensor([len(h) for h in prompt.unit_heads])
        positions = full.expand(3, -1).clone()  # the prefix: index == position
        in_units = (full >= index_starts[0]) & (full < index_starts[-1])
        f = full[in_units]
        unit = torch.searchsorted(index_starts, f, right=True) - 1
        offset, head, base = f - index_starts[unit], head_lengths[unit], position_starts[unit]
        cell = offset - head
        text = torch.where(cell < tpu, base + offset, base + head + advance + (cell - tpu))  # head, tail
        visual = cell.clamp(0, tpu - 1)
        rows = torch.stack([base + head, base + head + visual // layout.grid_w, base + head + visual % layout.grid_w])
        positions[:, in_units] = torch.where((cell >= 0) & (cell < tpu), rows, text.expand(3, -1))
        after = full >= index_starts[-1]
        positions[:, after] = full[after] - index_starts[-1] + position_starts[-1]
        return positions

    def model_inputs(
        self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor, features: torch.Tensor
    ) -> dict[str, Any]:
        from transformers.models.qwen3_vl.modeling_qwen3_vl import BaseModelOutputWithDeepstackFeatures

        ids = self.kept_sequence(prompt, layout, token_ids).input_ids[None]
        positions = self.positions(prompt, layout, token_ids)[:, None, :]
        device = self.device
        main, *levels = features.to(device).split(self.feature_dim, dim=-1)
        encoded = BaseModelOutputWithDeepstackFeatures(pooler_output=(main,),
                                                       deepstack_features=[(level,) for level in levels])
        return {
            "input_ids": ids.to(device),
            "attention_mask": torch.ones_like(ids, device=device),
            "position_ids": positions.to(device),
            "mm_encoder_outputs": {"video": encoded},
        }
