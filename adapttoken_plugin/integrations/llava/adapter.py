"""The model-family knowledge of a LLaVA-NeXT codebase model (any fork), as a `ModelAdapter` for the stage.

A unit is one frame. Its tokens are the fork's own: `encode_images` (vision tower + projector) then
`get_2dPool` (its pooling at its default stride, as `prepare_inputs_labels_for_multimodal` calls it),
g x g per frame in raster order. The text model is 1-D RoPE, numbered contiguously from 0 (what the fork
does: it passes no position ids). The video is the fork's one `<image>` placeholder (`IMAGE_TOKEN_INDEX`)
in `input_ids`; sequences are `inputs_embeds`: the prompt's embeddings around the video block, laid out
with newlines by `newlines.py`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ...adapters.base import ModelAdapter, PromptParts
from ...errors import UnsupportedInputError, UnsupportedModelError
from ...layout import VideoLayout
from .newlines import NewlineRule, video_block
from .structure import image_token_index

#: frames of the video the layout check runs the fork's own preparation on
CHECK_FRAMES = 2


class LlavaCodebaseAdapter(ModelAdapter):
    """Bound to one fork model by `integrations.llava.enable` (not in `ADAPTERS`: the transformers-class
    wrappers and the streaming `Pipeline` do not apply to these models)."""

    frames_per_unit = 1
    supports_streaming = False

    def __init__(self, model: Any, package: str, position_rule: str = "original") -> None:
        super().__init__(model, position_rule)
        self.video_token_id = image_token_index(package)
        if getattr(model.config, "add_faster_video", False):
            raise UnsupportedModelError("add_faster_video=True is not supported (upstream's own path for it "
                                        "references features it never computes)")
        self.grid = self._pooled_grid()

    def _pooled_grid(self) -> int:
        """Tokens per frame side after the fork's `get_2dPool`, found by pooling a blank frame's features."""
        side = self.model.get_vision_tower().num_patches_per_side
        embed = self.model.get_model().embed_tokens.weight
        blank = torch.zeros(1, side * side, embed.shape[1], dtype=embed.dtype, device=embed.device)
        tokens = self.model.get_2dPool(blank).shape[1]
        grid = math.isqrt(tokens)
        if grid * grid != tokens:
            raise UnsupportedModelError(f"get_2dPool gives {tokens} tokens per frame, not a square grid")
        return grid

    # --- structure -----------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.model.get_model().layers)

    def attention_module(self, layer: int) -> torch.nn.Module:
        return self.model.get_model().layers[layer].self_attn

    @property
    def device(self) -> torch.device:
        return self.model.get_model().embed_tokens.weight.device

    # --- inputs --------------------------------------------------------------------------------
    def split_inputs(self, inputs: dict[str, Any]) -> tuple[PromptParts, VideoLayout, torch.Tensor]:
        """{"input_ids" (1, L), "attention_mask", "images", "modalities"} of a `generate` call -> (prompt
        parts, layout, frames (T, 3, H, W)). One unpadded prompt, one video (`images=[frames]` or a
        (1, T, 3, H, W) tensor, `modalities=["video"]`), one `<image>` placeholder."""
        ids = self.check_single_prompt(inputs.get("input_ids"), inputs.get("attention_mask"))
        images, modalities = inputs.get("images"), inputs.get("modalities")
        modalities = [modalities] if isinstance(modalities, str) else list(modalities or [])
        if isinstance(images, torch.Tensor) and images.ndim == 5:
            images = list(images)
        if not isinstance(images, (list, tuple)) or len(images) != 1 or modalities != ["video"]:
            raise UnsupportedInputError(f"one video per prompt is supported (images=[frames], modalities=['video']); "
                                        f"got {len(images) if isinstance(images, (list, tuple)) else type(images)} "
                                        f"image entries with modalities {modalities}")
        frames = images[0]
        if frames.ndim != 4 or frames.shape[0] < 1:
            raise UnsupportedInputError(f"a video is (frames, 3, H, W); got shape {tuple(frames.shape)}")
        where = (ids == self.video_token_id).nonzero().flatten()
        if len(where) != 1:
            raise UnsupportedInputError(f"the prompt must hold exactly one video placeholder (token id "
                                        f"{self.video_token_id}); found {len(where)}")
        layout = VideoLayout(num_units=frames.shape[0], grid_h=self.grid, grid_w=self.grid, frames_per_unit=1)
        at = int(where[0])
        return PromptParts(ids[:at], ids[at + 1:]), layout, frames

    def unit_pixels(self, pixels: torch.Tensor, layout: VideoLayout, units: torch.Tensor) -> dict[str, Any]:
        return {"frames": pixels[units.to(pixels.device)]}

    def encode(self, pixel_inputs: dict[str, Any]) -> torch.Tensor:
        """(T * g * g, D) pooled features of the frames, frame by frame in raster order."""
        pooled = self.model.get_2dPool(self.model.encode_images(pixel_inputs["frames"]))
        return pooled.reshape(-1, pooled.shape[-1])

    # --- sequences -----------------------------------------------------------------------------
    def model_inputs(
        self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor, features: torch.Tensor
    ) -> dict[str, Any]:
        """{"inputs_embeds": (1, L, D), "attention_mask": (1, L) ones}: prompt embeddings around the kept
        tokens `token_ids` (ascending) with `features` (K, D), newlines placed by `NewlineRule`. Positions are
        contiguous (no `position_ids`; `enable` refuses `positions_1d="original"`)."""
        block = video_block(NewlineRule.from_config(self.model.config, layout), token_ids)
        embed = self.model.get_model().embed_tokens
        device = self.device
        text = embed(torch.cat([prompt.prefix_ids, prompt.suffix_ids]).to(device))
        visual = text.new_empty(block.length, text.shape[1])
        visual[block.token_columns.to(device)] = features.to(device, text.dtype)
        if len(block.newline_columns):
            visual[block.newline_columns.to(device)] = self.model.get_model().image_newline.to(device, text.dtype)
        n_pre = len(prompt.prefix_ids)
        embeds = torch.cat([text[:n_pre], visual, text[n_pre:]])[None]
        limit = getattr(self.model.config, "tokenizer_model_max_length", None)
        if limit is not None and embeds.shape[1] > limit:
            raise UnsupportedInputError(
                f"the sequence has {embeds.shape[1]} tokens, over tokenizer_model_max_length={limit}, which the "
                "fork would truncate (cutting off the question): lower the budget or frames_per_group"
            )
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=device)
        return {"inputs_embeds": embeds, "attention_mask": mask}

    def visual_columns(self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor) -> torch.Tensor:
        block = video_block(NewlineRule.from_config(self.model.config, layout), token_ids)
        return len(prompt.prefix_ids) + block.token_columns

    def check_against_fork(self, prompt: PromptParts, pixels: torch.Tensor) -> None:
        """Compare this adapter's full-video sequence on the first frames with the fork's own
        `prepare_inputs_labels_for_multimodal`; raise UnsupportedModelError when they differ (a fork that
        adds tokens or lays the video out its own way)."""
        frames = pixels[:CHECK_FRAMES]
        ids = torch.cat([prompt.prefix_ids, torch.tensor([self.video_token_id]), prompt.suffix_ids])[None]
        prepared = self.model.prepare_inputs_labels_for_multimodal(ids.to(self.device), None, None, None, None,
                                                                    [frames], modalities=["video"])
        expected = prepared[4]
        layout = VideoLayout(num_units=len(frames), grid_h=self.grid, grid_w=self.grid, frames_per_unit=1)
        ours = self.model_inputs(prompt, layout, layout.token_ids_of_units(torch.arange(len(frames))),
                                 self.encode({"frames": frames}))["inputs_embeds"]
        if expected is None or expected.shape != ours.shape:
            raise UnsupportedModelError(
                f"{type(self.model).__name__}.prepare_inputs_labels_for_multimodal lays out {len(frames)} frames as "
                f"{None if expected is None else tuple(expected.shape)}, the LLaVA-NeXT layout gives "
                f"{tuple(ours.shape)}: this fork changes the video layout, which the integration does not know"
            )
        if not torch.allclose(expected.float(), ours.float(), rtol=1e-3, atol=1e-4):
            raise UnsupportedModelError(
                f"{type(self.model).__name__}.prepare_inputs_labels_for_multimodal gives other embeddings than the "
                f"LLaVA-NeXT layout (max abs diff {float((expected.float() - ours.float()).abs().max()):.3g})"
            )
