"""Shared sequence building of the 1-D RoPE families (InternVL, LLaVA-OneVision, LLaVA-NeXT-Video)."""

from __future__ import annotations

from typing import Any

import torch

from ..layout import VideoLayout
from .base import POSITIONS_1D_CONTIGUOUS, ModelAdapter
from .sequence import PromptParts


class OneDimAdapter(ModelAdapter):
    """Shared sequence building of the 1-D RoPE families (InternVL, LLaVA-OneVision, LLaVA-NeXT-Video).

    Kept tokens are numbered contiguously by default (no `position_ids`: the model counts from 0);
    `positions_1d="original"` passes each token's index in the full sequence instead, gaps included,
    always together with `attention_mask` (without it transformers reads gapped positions as packed
    sequences and masks across the gaps).
    """

    #: keyword of `mm_encoder_outputs` the model reads the visual features from
    encoder_output_key = "video"

    def encoder_outputs(self, features: torch.Tensor) -> Any:
        """The `mm_encoder_outputs` entry for `features` (K, D), trailing tokens appended."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        return BaseModelOutputWithPooling(pooler_output=features[None])

    def model_inputs(
        self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor, features: torch.Tensor
    ) -> dict[str, Any]:
        seq = self.kept_sequence(prompt, layout, token_ids)
        device = self.device
        ids = seq.input_ids[None].to(device)
        inputs = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "mm_encoder_outputs": {self.encoder_output_key: self.encoder_outputs(features.to(device))},
        }
        if self.positions_1d != POSITIONS_1D_CONTIGUOUS:
            inputs["position_ids"] = seq.full_index[None].to(device)
        return inputs
