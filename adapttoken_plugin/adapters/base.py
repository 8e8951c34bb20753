"""The contract between the selection stage and a model family.

Adapters are the only code that touches model internals; they make no selection decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import UnsupportedModelError
from ..layout import VideoLayout
from ..registry import ADAPTERS


@dataclass
class PromptParts:
    """The text around the video: `prefix_ids` + <visual tokens> + `suffix_ids` (1-D LongTensors).

    The suffix (from the token that closes the video up to the answer position) holds the text
    queries whose attention ranks the visual tokens.
    """

    prefix_ids: torch.Tensor
    suffix_ids: torch.Tensor


class ModelAdapter:
    """Base class of model adapters. One instance is bound to one model."""

    registry_name = "?"
    #: frames the model folds into one temporal unit
    frames_per_unit = 1

    def __init__(self, model: Any) -> None:
        self.model = model

    # --- structure -----------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.model.get_decoder().layers)

    def default_scoring_layer(self) -> int:
        """Layer used when the config names none: about 0.7 of the depth (layer 20 of 28 for 7B)."""
        return min(self.num_layers - 1, round(0.7 * self.num_layers))

    def attention_module(self, layer: int) -> torch.nn.Module:
        return self.model.get_decoder().layers[layer].self_attn

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    # --- per-family pieces ---------------------------------------------------------------------
    def split_inputs(self, inputs: dict[str, Any]) -> tuple[PromptParts, VideoLayout, torch.Tensor]:
        """Processor outputs -> (prompt parts, layout, pixel rows of the whole video). Pops what it uses."""
        raise NotImplementedError

    def unit_pixels(self, pixels: torch.Tensor, layout: VideoLayout, units: torch.Tensor) -> dict[str, Any]:
        """Encoder inputs for some units of an in-memory video."""
        raise NotImplementedError

    def frames_to_pixels(self, processor: Any, frames: np.ndarray) -> dict[str, Any]:
        """Encoder inputs for decoded frames (F, H, W, 3) uint8, F a multiple of frames_per_unit."""
        raise NotImplementedError

    def frame_size(self, processor: Any, height: int, width: int, max_pixels: int | None) -> tuple[int, int]:
        """(height, width) to decode frames at for the streaming pipeline: the processor's own resize rule."""
        raise NotImplementedError

    def layout_for_frames(
        self, num_frames: int, height: int, width: int, sampled_fps: float, frame_indices: tuple[int, ...]
    ) -> VideoLayout:
        """Token layout of `num_frames` decoded frames of `height` x `width` (a size from `frame_size`)."""
        raise NotImplementedError

    def encode(self, pixel_inputs: dict[str, Any]) -> torch.Tensor:
        """Visual features (N, D) of the units in `pixel_inputs`, in temporal-then-raster order."""
        raise NotImplementedError

    def model_inputs(
        self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor, features: torch.Tensor,
        position_rule: str,
    ) -> dict[str, Any]:
        """Keyword arguments of `model.forward` / `model.generate` for a sequence holding only the
        visual tokens `token_ids` (ascending global ids) with `features` (N, D), each at the position it
        has in the full video."""
        raise NotImplementedError

    def visual_columns(self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor) -> torch.Tensor:
        """(N,) sequence positions of the visual tokens `token_ids` in the sequence `model_inputs` builds.
        The default: one contiguous run right after the prefix (families that put text between frames override)."""
        start = len(prompt.prefix_ids)
        return torch.arange(start, start + len(token_ids))

    def attention_rows(
        self, attn: torch.nn.Module, hidden_states: torch.Tensor, position_embeddings: Any, n_query: int
    ) -> torch.Tensor:
        """Softmax attention (B, H, n_query, L) of the last `n_query` rows, recomputed with the layer's
        own projections and rotary embedding from the layer's inputs."""
        raise NotImplementedError


def adapter_for(model: Any) -> ModelAdapter:
    """The registered adapter for `model`'s class (or a base class of it), bound to `model`."""
    names = [cls.__name__ for cls in type(model).__mro__]
    for adapter_name in ADAPTERS.names():
        supported = ADAPTERS.meta(adapter_name).get("model_classes", ())
        if any(name in supported for name in names):
            return ADAPTERS.get(adapter_name)(model)
    supported_all = sorted(c for a in ADAPTERS.names() for c in ADAPTERS.meta(a).get("model_classes", ()))
    raise UnsupportedModelError(
        f"no adapter for model class {type(model).__name__}; supported classes: {supported_all}"
    )
