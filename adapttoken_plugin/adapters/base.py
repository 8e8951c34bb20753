"""The contract between the selection stage and a model family.

Adapters are the only code that touches model internals; they make no selection decisions.

A video reaches the language model as a run of frame units (`VideoLayout`). Families differ in
what surrounds each unit's visual tokens: nothing (Qwen2/2.5-VL, LLaVA), a timestamp and
`<|vision_start|>` / `<|vision_end|>` (Qwen3-VL), or a frame label and `<img>` / `</img>` (InternVL).
`PromptParts` carries that text per unit, and `kept_sequence` lays out the sequence for any subset of
visual tokens the same way for every family: a unit with no kept token is dropped with its text, so
the sequence stays one the processor could have produced for the kept frames.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..config import POSITIONS_1D
from ..errors import NoVideoError, UnsupportedInputError, UnsupportedModelError
from ..layout import VideoLayout
from ..presets import preset_for
from ..registry import ADAPTERS

POSITIONS_1D_CONTIGUOUS = POSITIONS_1D[0]


@dataclass
class PromptParts:
    """The text around the video: `prefix_ids` + <video> + `suffix_ids` (1-D LongTensors).

    The suffix (from the token that closes the video up to the answer position) holds the text
    queries whose attention ranks the visual tokens. Families with text inside the video give it per
    frame unit: unit u is `unit_heads[u]` + its visual tokens + `unit_tails[u]` (None: no such text).
    """

    prefix_ids: torch.Tensor
    suffix_ids: torch.Tensor
    unit_heads: list[torch.Tensor] | None = None
    unit_tails: list[torch.Tensor] | None = None


@dataclass
class KeptSequence:
    """A sequence holding only some visual tokens of the video (batch 1).

    Attributes:
        input_ids: (L,) prefix; per unit with kept tokens its head, one placeholder per kept token and
            its tail; the adapter's trailing video placeholders; suffix.
        full_index: (L,) index of each token in the full sequence (every token of every unit).
        visual_columns: (N,) columns of the ranked visual tokens (trailing placeholders excluded).
    """

    input_ids: torch.Tensor
    full_index: torch.Tensor
    visual_columns: torch.Tensor


class ModelAdapter:
    """Base class of model adapters. One instance is bound to one model."""

    registry_name = "?"
    #: frames the model folds into one temporal unit
    frames_per_unit = 1
    #: placeholder id of a visual token in `input_ids` (subclasses set it from the model config)
    video_token_id: int = -1
    #: keyword of the processor output that carries the video (the wrappers select only such calls)
    video_input_key = "pixel_values_videos"
    #: visual tokens after the last unit that are always kept and never ranked (LLaVA-OV's newline)
    trailing_video_tokens = 0

    def __init__(self, model: Any) -> None:
        self.model = model

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
    def split_inputs(self, inputs: dict[str, Any]) -> tuple[PromptParts, VideoLayout, torch.Tensor]:
        """Processor outputs -> (prompt parts, layout, pixel rows of the whole video). Pops what it uses."""
        raise NotImplementedError

    def unit_pixels(self, pixels: torch.Tensor, layout: VideoLayout, units: torch.Tensor) -> dict[str, Any]:
        """Encoder inputs for some units of an in-memory video."""
        raise NotImplementedError

    def frames_to_pixels(self, processor: Any, frames: np.ndarray) -> dict[str, Any]:
        """Encoder inputs for decoded frames (F, H, W, 3) uint8, F a multiple of frames_per_unit."""
        raise NotImplementedError

    def frame_size(
        self, processor: Any, height: int, width: int, max_pixels: int | None, num_frames: int
    ) -> tuple[int, int]:
        """(height, width) to decode `num_frames` frames of a `height` x `width` video at for the streaming
        pipeline: the processor's own resize rule (Qwen3-VL's depends on the frame count)."""
        raise NotImplementedError

    def video_prompt(self, processor: Any, rendered: str, layout: VideoLayout, video_fps: float) -> PromptParts:
        """Prompt parts of a chat-template rendering `rendered` that holds the video placeholder once, for
        the decoded frames of `layout` (`layout.frame_indices`: file indices of a video at `video_fps`).

        This default fits families whose processor writes the video as one run of placeholders; families
        that write text around each unit override it with `unit_prompt`.
        """
        ids = self.tokenize(processor, rendered)
        where = (ids == self.video_token_id).nonzero().flatten()
        if len(where) != 1:
            raise NoVideoError(f"the chat template produced {len(where)} video placeholders; expected exactly 1")
        return PromptParts(ids[: int(where[0])], ids[int(where[0]) + 1:])

    def unit_prompt(self, processor: Any, rendered: str, expansion: str, unit_placeholder: str) -> PromptParts:
        """Prompt parts with per-unit text for families whose processor writes text around each unit.

        `expansion` is what the processor's own `replace_video_token` writes for the video; the
        processor's video token in `rendered` is replaced by it, each unit's run of `unit_placeholder`
        is collapsed to one (placeholders are special tokens, so the text between them tokenizes the
        same), and the ids are split with `unit_text`, exactly as `split_inputs` splits the processor's
        output.
        """
        count = rendered.count(processor.video_token)
        if count != 1:
            raise NoVideoError(f"the chat template produced {count} video placeholders "
                               f"({processor.video_token!r}); expected exactly 1")
        collapsed = re.sub(f"(?:{re.escape(unit_placeholder)})+", lambda _: unit_placeholder, expansion)
        ids = self.tokenize(processor, rendered.replace(processor.video_token, collapsed))
        runs = self.placeholder_runs(ids)
        if len(runs) != collapsed.count(unit_placeholder) or bool(((runs[:, 1] - runs[:, 0]) != 1).any()):
            raise UnsupportedInputError("the rendered prompt holds visual placeholders outside the video")
        return self.unit_text(ids, runs)

    @staticmethod
    def tokenize(processor: Any, text: str) -> torch.Tensor:
        """(L,) token ids of an already rendered prompt (the template wrote the special tokens)."""
        return torch.tensor(processor.tokenizer(text, add_special_tokens=False)["input_ids"])

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
        position_rule: str, positions_1d: str = POSITIONS_1D_CONTIGUOUS,
    ) -> dict[str, Any]:
        """Keyword arguments of `model.forward` / `model.generate` for a sequence holding only the
        visual tokens `token_ids` (ascending global ids) with `features` (N, D), each at the position it
        has in the full video. `position_rule` places the text after a 3-D M-RoPE video (Qwen);
        `positions_1d` numbers a 1-D RoPE sequence (`contiguous` or `original`, with gaps)."""
        raise NotImplementedError

    def visual_columns(self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor) -> torch.Tensor:
        """(N,) sequence positions of the visual tokens `token_ids` in the sequence `model_inputs` builds."""
        return self.kept_sequence(prompt, layout, token_ids).visual_columns

    def attention_rows(
        self, attn: torch.nn.Module, hidden_states: torch.Tensor, position_embeddings: Any, n_query: int
    ) -> torch.Tensor:
        """Softmax attention (B, H, n_query, L) of the last `n_query` rows, recomputed with the layer's
        own projections, q/k norms (Qwen3) and rotary function from the layer's inputs.

        Fits the decoder attention of every supported family (transformers' Llama/Qwen2 layout:
        `q_proj`, `k_proj`, optional `q_norm` / `k_norm` on the head dimension, the module's own
        `apply_rotary_pos_emb`, causal, grouped-query heads).
        """
        batch, length, _ = hidden_states.shape
        window = getattr(attn, "sliding_window", None)
        if window is not None and length > window:
            raise UnsupportedModelError(
                f"scoring layer {attn.layer_idx} uses sliding-window attention (window {window}) and the "
                f"sequence has {length} tokens: pick a full-attention scoring_layer"
            )
        d = attn.head_dim
        rope = sys.modules[type(attn).__module__].apply_rotary_pos_emb  # the layer's own rotary function
        cos, sin = position_embeddings
        q = attn.q_proj(hidden_states[:, -n_query:]).view(batch, n_query, -1, d)
        k = attn.k_proj(hidden_states).view(batch, length, -1, d)
        if getattr(attn, "q_norm", None) is not None:
            q, k = attn.q_norm(q), attn.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        q = rope(q, q, cos[:, -n_query:], sin[:, -n_query:])[0]
        k = rope(k, k, cos, sin)[0]
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)  # grouped-query heads
        logits = (q.float() @ k.float().transpose(-1, -2)) * attn.scaling
        query_pos = torch.arange(length - n_query, length, device=logits.device)[:, None]
        future = torch.arange(length, device=logits.device)[None, :] > query_pos
        return torch.softmax(logits.masked_fill(future, float("-inf")), dim=-1)

    # --- shared helpers ------------------------------------------------------------------------
    def unit_starts(self, prompt: PromptParts, layout: VideoLayout, visual_extent: int) -> torch.Tensor:
        """(U + 1,) offset at which each unit's block starts in the full sequence (the last entry: where
        the units end), when a unit's visual tokens span `visual_extent` (tokens_per_unit for sequence
        indices; Qwen3-VL passes its position advance per unit)."""
        lengths = torch.full((layout.num_units,), visual_extent, dtype=torch.long)
        if prompt.unit_heads is not None:
            lengths += torch.tensor([len(h) + len(t) for h, t in zip(prompt.unit_heads, prompt.unit_tails)],
                                    dtype=torch.long)
        return len(prompt.prefix_ids) + torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])

    def kept_sequence(self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor) -> KeptSequence:
        """Lay out prefix, the kept visual tokens `token_ids` (ascending) with their units' text, the
        trailing video placeholders and the suffix; see `KeptSequence`."""
        pad, dtype = self.video_token_id, prompt.prefix_ids.dtype
        n_pre, tpu = len(prompt.prefix_ids), layout.tokens_per_unit
        token_ids = token_ids.cpu()
        starts = self.unit_starts(prompt, layout, tpu)
        ids, index, columns = [prompt.prefix_ids], [torch.arange(n_pre)], []
        if prompt.unit_heads is None:
            ids.append(torch.full((len(token_ids),), pad, dtype=dtype))
            index.append(n_pre + token_ids)
            columns.append(torch.arange(n_pre, n_pre + len(token_ids)))
        else:
            units, counts = torch.unique_consecutive(layout.unit_of(token_ids), return_counts=True)
            column = n_pre
            for unit, cells in zip(units.tolist(), layout.cell_of(token_ids).split(counts.tolist())):
                head, tail, start = prompt.unit_heads[unit], prompt.unit_tails[unit], int(starts[unit])
                ids += [head, torch.full((len(cells),), pad, dtype=dtype), tail]
                index += [start + torch.arange(len(head)), start + len(head) + cells,
                          start + len(head) + tpu + torch.arange(len(tail))]
                columns.append(column + len(head) + torch.arange(len(cells)))
                column += len(head) + len(cells) + len(tail)
        end, trailing = int(starts[-1]), self.trailing_video_tokens
        ids += [torch.full((trailing,), pad, dtype=dtype), prompt.suffix_ids]
        index += [end + torch.arange(trailing), end + trailing + torch.arange(len(prompt.suffix_ids))]
        empty = torch.zeros(0, dtype=torch.long)
        return KeptSequence(torch.cat(ids), torch.cat(index), torch.cat(columns) if columns else empty)

    def check_single_prompt(self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The (L,) ids of a batch-1, unpadded prompt; raises UnsupportedInputError otherwise."""
        if input_ids is None:
            raise UnsupportedInputError("the selector stage needs input_ids (inputs_embeds alone is not supported)")
        if input_ids.ndim != 2 or input_ids.shape[0] != 1:
            raise UnsupportedInputError(f"the selector stage runs one prompt at a time; got input_ids of shape "
                                        f"{tuple(input_ids.shape)}")
        if attention_mask is not None and not bool(attention_mask.all()):
            raise UnsupportedInputError("padded prompts are not supported: pass one unpadded prompt")
        return input_ids[0].cpu()

    def placeholder_runs(self, ids: torch.Tensor) -> torch.Tensor:
        """(R, 2) [start, stop) of each run of `video_token_id` in `ids`; raises NoVideoError when none."""
        mask = (ids == self.video_token_id).to(torch.int8)
        edges = torch.diff(mask, prepend=mask.new_zeros(1), append=mask.new_zeros(1))
        runs = torch.stack([(edges == 1).nonzero().flatten(), (edges == -1).nonzero().flatten()], dim=1)
        if len(runs) == 0:
            raise NoVideoError(f"the prompt holds no video placeholder (token id {self.video_token_id}); "
                               "build it with the processor's chat template and a video entry")
        return runs

    def unit_text(self, ids: torch.Tensor, runs: torch.Tensor) -> PromptParts:
        """Split a prompt whose units are written `<head text> <opener> <visual tokens> <closer>`, one
        placeholder run per unit (Qwen3-VL: `<t seconds><|vision_start|> ... <|vision_end|>`; InternVL:
        `\\nFrame{i}: <img> ... </img>`), into prefix, per-unit heads and tails, and suffix.

        Unit u's tail is its closer; unit u > 0's head is everything after the previous closer through
        its own opener. Unit 0's head starts at the last occurrence of the token unit 1's head starts
        with (the timestamp's `<`, the label's newline) within as many tokens as unit 1's head has;
        with a single unit it is the opener alone (that unit is never dropped).

        Returns PromptParts with unit_heads / unit_tails. Raises UnsupportedInputError when the runs are
        not wrapped the same way or unit 0's head is not found.
        """
        starts, stops = runs[:, 0], runs[:, 1]
        if int(starts[0]) == 0 or int(stops[-1]) >= len(ids):
            raise UnsupportedInputError("every frame's visual tokens must be wrapped by an opening and a closing "
                                        "token, as the processor writes them")
        openers, closers = ids[starts - 1], ids[stops]
        if bool((openers != openers[0]).any()) or bool((closers != closers[0]).any()):
            raise UnsupportedInputError(
                f"every frame's visual tokens must be wrapped by the same tokens, as the processor writes them; "
                f"found openers {sorted(set(openers.tolist()))} and closers {sorted(set(closers.tolist()))}"
            )
        heads = [ids[int(stops[u - 1]) + 1:int(starts[u])] for u in range(1, len(runs))]
        first = int(starts[0]) - 1  # the opener of unit 0
        if heads and len(heads[0]) > 1:
            window_start = max(0, int(starts[0]) - len(heads[0]))
            hits = (ids[window_start:first] == heads[0][0]).nonzero().flatten()
            if len(hits) == 0:
                raise UnsupportedInputError(
                    f"cannot find where the first frame's text starts: expected token {int(heads[0][0])} (the "
                    f"first token of the second frame's text) within {len(heads[0])} tokens before the first frame"
                )
            first = window_start + int(hits[-1])
        heads.insert(0, ids[first:int(starts[0])])
        tails = [ids[int(s):int(s) + 1] for s in stops]
        return PromptParts(ids[:first], ids[int(stops[-1]) + 1:], heads, tails)


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
        self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor, features: torch.Tensor,
        position_rule: str, positions_1d: str = POSITIONS_1D_CONTIGUOUS,
    ) -> dict[str, Any]:
        seq = self.kept_sequence(prompt, layout, token_ids)
        device = self.device
        ids = seq.input_ids[None].to(device)
        inputs = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "mm_encoder_outputs": {self.encoder_output_key: self.encoder_outputs(features.to(device))},
        }
        if positions_1d != POSITIONS_1D_CONTIGUOUS:
            inputs["position_ids"] = seq.full_index[None].to(device)
        return inputs


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
