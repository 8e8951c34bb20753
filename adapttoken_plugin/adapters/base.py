"""The contract between the selection stage and a model family: the abstract `ModelAdapter`.

Adapters are the only code that touches model internals; they make no selection decisions. The
sequence helpers they share (prompt parts, kept sequences) are in `sequence.py`; the 1-D RoPE families'
common `model_inputs` in `one_dim.py`; the attention rows the stage scores with in `scoring.py`.

A family is one file in this folder (found without a list to edit) or in another distribution (entry point
group `adapttoken_plugin.adapters`):

    @ADAPTERS.register("my_family", model_classes=("MyForConditionalGeneration",), summary="...")
    class MyAdapter(ModelAdapter): ...     # the abstract methods; capabilities as class attributes
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch

from ..config import POSITION_RULES, POSITIONS_1D, AdaptTokenConfig
from ..errors import ConfigError, NoVideoError, UnsupportedModelError
from ..layout import VideoLayout
from ..presets import preset_for
from ..registry import ADAPTERS
from .sequence import KeptSequence, PromptParts, SequenceHelpers

__all__ = ["KeptSequence", "ModelAdapter", "PromptParts", "adapter_for", "execution_device"]

POSITIONS_1D_CONTIGUOUS = POSITIONS_1D[0]


class ModelAdapter(SequenceHelpers, ABC):
    """Base class of model adapters. One instance is bound to one model and one pair of position settings.

    A family implements the abstract methods: `split_inputs`, `unit_pixels`, `encode` and `model_inputs`
    (what `enable` needs), and, when `supports_streaming`, `frames_to_pixels`, `frame_size` and
    `layout_for_frames` (what the streaming `Pipeline` needs). What a family can do is declared in class
    attributes, never detected from which methods it overrides.
    """

    registry_name: ClassVar[str] = "?"
    #: frames the model folds into one temporal unit
    frames_per_unit: int = 1
    #: placeholder id of a visual token in `input_ids` (subclasses set it from the model config)
    video_token_id: int = -1
    #: keyword of the processor output that carries the video (the wrappers select only such calls)
    video_input_key: ClassVar[str] = "pixel_values_videos"
    #: visual tokens after the last unit that are always kept and never ranked (LLaVA-OV's newline)
    trailing_video_tokens: int = 0
    #: whether the processor writes text around every frame unit (Qwen3-VL timestamps, InternVL frame labels):
    #: then the prompt is built from the sampled frames (`video_prompt` needs the layout and the video fps)
    has_unit_text: ClassVar[bool] = False
    #: whether the streaming `Pipeline` can drive it (decoded frames -> encoder inputs, frame size, layout)
    supports_streaming: ClassVar[bool] = True

    def __init__(self, model: Any, position_rule: str = "original", positions_1d: str = POSITIONS_1D_CONTIGUOUS
                 ) -> None:
        """Bind to `model`; `position_rule` and `positions_1d` (see `AdaptTokenConfig`) fix how `model_inputs`
        numbers positions for this adapter's lifetime."""
        if position_rule not in POSITION_RULES:
            raise ConfigError(f"position_rule={position_rule!r} is out of range: expected one of {POSITION_RULES}")
        if positions_1d not in POSITIONS_1D:
            raise ConfigError(f"positions_1d={positions_1d!r} is out of range: expected one of {POSITIONS_1D}")
        self.model = model
        self.position_rule = position_rule
        self.positions_1d = positions_1d

    # --- structure -----------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.model.get_decoder().layers)

    def default_scoring_layer(self) -> int:
        """Layer used when the config names none: the checkpoint's preset (`presets.PRESETS`) when the
        model has the preset's depth, else about 0.7 of the depth (layer 20 of 28)."""
        preset = preset_for(self.model)
        if preset is not None and preset.num_layers == self.num_layers:
            return preset.scoring_layer
        return min(self.num_layers - 1, round(0.7 * self.num_layers))

    def attention_module(self, layer: int) -> torch.nn.Module:
        return self.model.get_decoder().layers[layer].self_attn

    @property
    def device(self) -> torch.device:
        """Where the language model's inputs go: the embeddings' device (accelerate offloading: where it runs them)."""
        weight = self.model.get_input_embeddings().weight
        return weight.device if weight.device.type != "meta" else execution_device(self.model)

    # --- per-family pieces ---------------------------------------------------------------------
    @abstractmethod
    def split_inputs(self, inputs: dict[str, Any]) -> tuple[PromptParts, VideoLayout, torch.Tensor]:
        """Processor outputs -> (prompt parts, layout, pixel rows of the whole video). Pops what it uses."""
        raise NotImplementedError

    @abstractmethod
    def unit_pixels(self, pixels: torch.Tensor, layout: VideoLayout, units: torch.Tensor) -> dict[str, Any]:
        """Encoder inputs for some units of an in-memory video."""
        raise NotImplementedError

    def frames_to_pixels(self, processor: Any, frames: np.ndarray) -> dict[str, Any]:
        """Encoder inputs for decoded frames (F, H, W, 3) uint8, F a multiple of frames_per_unit."""
        raise UnsupportedModelError(f"{type(self).__name__} does not support the streaming pipeline")

    def frame_size(
        self, processor: Any, height: int, width: int, max_pixels: int | None, num_frames: int
    ) -> tuple[int, int]:
        """(height, width) to decode `num_frames` frames of a `height` x `width` video at for the streaming
        pipeline: the processor's own resize rule (Qwen3-VL's depends on the frame count)."""
        raise UnsupportedModelError(f"{type(self).__name__} does not support the streaming pipeline")

    def video_prompt(self, processor: Any, rendered: str, layout: VideoLayout, video_fps: float) -> PromptParts:
        """Prompt parts of a chat-template rendering `rendered` that holds the video placeholder once, for
        the decoded frames of `layout` (`layout.frame_indices`: file indices of a video at `video_fps`).

        This default fits families whose processor writes the video as one run of placeholders; families
        that write text around each unit (`has_unit_text`) override it with `unit_prompt`.
        """
        ids = self.tokenize(processor, rendered)
        where = (ids == self.video_token_id).nonzero().flatten()
        if len(where) != 1:
            raise NoVideoError(f"the chat template produced {len(where)} video placeholders; expected exactly 1")
        return PromptParts(ids[: int(where[0])], ids[int(where[0]) + 1:])

    def layout_for_frames(
        self, num_frames: int, height: int, width: int, sampled_fps: float, frame_indices: tuple[int, ...]
    ) -> VideoLayout:
        """Token layout of `num_frames` decoded frames of `height` x `width` (a size from `frame_size`)."""
        raise UnsupportedModelError(f"{type(self).__name__} does not support the streaming pipeline")

    @abstractmethod
    def encode(self, pixel_inputs: dict[str, Any]) -> torch.Tensor:
        """Visual features (N, D) of the units in `pixel_inputs`, in temporal-then-raster order."""
        raise NotImplementedError

    @abstractmethod
    def model_inputs(
        self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor, features: torch.Tensor
    ) -> dict[str, Any]:
        """Keyword arguments of `model.forward` / `model.generate` for a sequence holding only the
        visual tokens `token_ids` (ascending global ids) with `features` (N, D), each at the position it
        has in the full video. `self.position_rule` places the text after a 3-D M-RoPE video (Qwen);
        `self.positions_1d` numbers a 1-D RoPE sequence (`contiguous` or `original`, with gaps)."""
        raise NotImplementedError

    def visual_columns(self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor) -> torch.Tensor:
        """(N,) sequence positions of the visual tokens `token_ids` in the sequence `model_inputs` builds."""
        return self.kept_sequence(prompt, layout, token_ids).visual_columns


def execution_device(module: torch.nn.Module) -> torch.device:
    """The device `module` computes on: its first parameter's, or with accelerate offloading (`device_map`
    with offloaded parts: parameters wait on `meta` between calls) the device its hooks run it on."""
    param = next(module.parameters())
    if param.device.type != "meta":
        return param.device
    for part in module.modules():
        device = getattr(getattr(part, "_hf_hook", None), "execution_device", None)
        if device is not None:
            return torch.device(device)
    raise UnsupportedModelError(f"{type(module).__name__} has its parameters on the meta device and no accelerate "
                                "hook says where it runs; load the weights or dispatch it with accelerate")


def adapter_for(model: Any, config: AdaptTokenConfig | None = None) -> ModelAdapter:
    """The registered adapter for `model`'s class (or a base class of it), bound to `model` with the position
    settings of `config` (None: the defaults)."""
    names = [cls.__name__ for cls in type(model).__mro__]
    for adapter_name in ADAPTERS.names():
        supported = ADAPTERS.meta(adapter_name).get("model_classes", ())
        if any(name in supported for name in names):
            if config is None:
                return ADAPTERS.get(adapter_name)(model)
            return ADAPTERS.get(adapter_name)(model, config.position_rule, config.positions_1d)
    supported_all = sorted(c for a in ADAPTERS.names() for c in ADAPTERS.meta(a).get("model_classes", ()))
    raise UnsupportedModelError(
        f"no adapter for model class {type(model).__name__}; supported classes: {supported_all}"
    )
