"""One entry per supported model family for the adapter contract suite (`test_contract.py`).

Each entry builds a tiny random-weight model from a config in code and a real processor around a
byte-level tokenizer (nothing is downloaded), and knows, independently of the plugin, how that
processor writes a video: which tokens form each frame unit's block. Adding a family = one adapter
file + one entry in `FAMILIES`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import torch

SPECIALS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
            "<img>", "</img>", "<IMG_CONTEXT>", "<video>", "<image>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for c in message['content'] %}{% if c['type'] == 'video' %}{{ video }}"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QUESTION = "Which colour? A. red B. blue"
FPS = 2.0


@cache
def tokenizer(internvl: bool = False) -> Any:
    """Byte-level Qwen2 tokenizer (ids 0-255 are bytes, then <|endoftext|> and every family's special
    tokens, the same ids in both variants). The InternVL variant names its image tokens as that
    processor expects; the others must not (Qwen's processors read `tokenizer.video_token`)."""
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    vocab.update({token: 256 + i for i, token in enumerate(["<|endoftext|>", *SPECIALS])})
    names = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
             "video_token": "<video>"} if internvl else {}
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token="<|endoftext|>", eos_token="<|im_end|>",
                         pad_token="<|endoftext|>", extra_special_tokens=names)
    tok.add_special_tokens({"additional_special_tokens": SPECIALS})
    return tok


def tid(token: str) -> int:
    return tokenizer().convert_tokens_to_ids(token)


def text_config(**extra: Any) -> dict:
    tok = tokenizer()
    return dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=4096, bos_token_id=tok.pad_token_id,
                eos_token_id=tid("<|im_end|>"), pad_token_id=tok.pad_token_id, **extra)


def _template(video: str) -> str:
    return CHAT_TEMPLATE.replace("{{ video }}", video)


# --- per-family builders ------------------------------------------------------------------------
def _qwen_ids() -> dict:
    return dict(image_token_id=tid("<|image_pad|>"), video_token_id=tid("<|video_pad|>"),
                vision_start_token_id=tid("<|vision_start|>"), vision_end_token_id=tid("<|vision_end|>"))


def _qwen2_vl() -> Any:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    rope = {"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0}
    config = Qwen2VLConfig(text_config=text_config(rope_parameters=rope),
                           vision_config=dict(depth=2, embed_dim=32, hidden_size=32, num_heads=4, mlp_ratio=2,
                                              patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
                           **_qwen_ids())
    return Qwen2VLForConditionalGeneration(config)


def _qwen2_5_vl() -> Any:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    rope = {"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0}
    config = Qwen2_5_VLConfig(text_config=text_config(rope_parameters=rope),
                              vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4,
                                                 out_hidden_size=32, patch_size=14, spatial_merge_size=2,
                                                 temporal_patch_size=2, tokens_per_second=2, window_size=112,
                                                 fullatt_block_indexes=[1]),
                              **_qwen_ids())
    return Qwen2_5_VLForConditionalGeneration(config)


def _qwen3_vl() -> Any:
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    rope = {"rope_type": "default", "mrope_section": [2, 1, 1], "mrope_interleaved": True, "rope_theta": 10000.0}
    config = Qwen3VLConfig(text_config=text_config(head_dim=8, rope_parameters=rope),
                           vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4,
                                              out_hidden_size=32, patch_size=16, spatial_merge_size=2,
                                              temporal_patch_size=2, num_position_embeddings=16,
                                              deepstack_visual_indexes=[0, 1]),
                           **_qwen_ids())
    return Qwen3VLForConditionalGeneration(config)


def _internvl() -> Any:
    from transformers import InternVLConfig, InternVLForConditionalGeneration

    config = InternVLConfig(text_config={"model_type": "qwen2", **text_config()},
                            vision_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                               intermediate_size=64, image_size=16, patch_size=4),
                            image_token_id=tid("<IMG_CONTEXT>"), image_seq_length=4, downsample_ratio=0.5,
                            vision_feature_layer=-1, vision_feature_select_strategy="default")
    return InternVLForConditionalGeneration(config)


def _llava_onevision() -> Any:
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    config = LlavaOnevisionConfig(text_config={"model_type": "qwen2", **text_config()},
                                  vision_config=dict(model_type="siglip_vision_model", hidden_size=32,
                                                     intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                     image_size=16, patch_size=4),
                                  image_token_index=tid("<image>"), video_token_index=tid("<video>"),
                                  vision_feature_select_strategy="full", vision_feature_layer=-1,
                                  image_grid_pinpoints=[[16, 16]])
    return LlavaOnevisionForConditionalGeneration(config)


def _llava_next_video() -> Any:
    from transformers import LlavaNextVideoConfig, LlavaNextVideoForConditionalGeneration

    config = LlavaNextVideoConfig(text_config={"model_type": "llama", **text_config()},
                                  vision_config=dict(model_type="clip_vision_model", hidden_size=32,
                                                     intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                     image_size=16, patch_size=4, projection_dim=32),
                                  image_token_index=tid("<image>"), video_token_index=tid("<video>"),
                                  vision_feature_select_strategy="default", vision_feature_layer=-2,
                                  image_grid_pinpoints=[[16, 16]], spatial_pool_stride=2)
    return LlavaNextVideoForConditionalGeneration(config)


def _qwen_processor(cls_name: str, patch: int) -> Callable[[], Any]:
    def build() -> Any:
        import transformers
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

        video_cls = (transformers.Qwen3VLVideoProcessor if cls_name == "Qwen3VLProcessor"
                     else transformers.Qwen2VLVideoProcessor)
        pixels = dict(size={"shortest_edge": 16 * 16, "longest_edge": 128 * 128}, patch_size=patch)
        template = "<|vision_start|><|video_pad|><|vision_end|>"
        return getattr(transformers, cls_name)(image_processor=Qwen2VLImageProcessor(**pixels), tokenizer=tokenizer(),
                                               video_processor=video_cls(**pixels), chat_template=_template(template))
    return build


def _internvl_processor() -> Any:
    from transformers import GotOcr2ImageProcessor, InternVLProcessor, InternVLVideoProcessor

    size = {"height": 16, "width": 16}
    return InternVLProcessor(image_processor=GotOcr2ImageProcessor(size=size), tokenizer=tokenizer(internvl=True),
                             video_processor=InternVLVideoProcessor(size=size), image_seq_length=4,
                             chat_template=_template("<video>\n"))


def _llava_onevision_processor() -> Any:
    from transformers import LlavaOnevisionImageProcessor, LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor

    size = {"height": 16, "width": 16}
    return LlavaOnevisionProcessor(image_processor=LlavaOnevisionImageProcessor(size=size), tokenizer=tokenizer(),
                                   video_processor=LlavaOnevisionVideoProcessor(size=size), num_image_tokens=16,
                                   vision_feature_select_strategy="full", chat_template=_template("<video>"))


def _llava_next_video_processor() -> Any:
    from transformers import LlavaNextImageProcessor, LlavaNextVideoProcessor, LlavaNextVideoVideoProcessor

    video = LlavaNextVideoVideoProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    return LlavaNextVideoProcessor(video_processor=video, image_processor=LlavaNextImageProcessor(),
                                   tokenizer=tokenizer(), patch_size=4, vision_feature_select_strategy="default",
                                   chat_template=_template("<video>"))


# --- the entries --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Family:
    """How one family's processor writes a video, and how to build its tiny model and inputs.

    Attributes:
        name: registered adapter name.
        build_model / build_processor: tiny model (random weights) / real processor, built in code.
        frames / frame_size: frames of the test video and their (height, width) in pixels.
        frames_per_unit: frames per unit (2 for the Qwen frame pairs).
        unit_block: regex over `token_string` of one unit's whole block (text + visual tokens), or None
            when the units are consecutive slices of one placeholder run.
        trailing: visual placeholders after the units (LLaVA-OV's newline).
        mrope: 3-D M-RoPE positions (compared with the model's own get_rope_index).
        encoder_key: `mm_encoder_outputs` key the model reads the features from.
        processor_kwargs: extra keyword arguments of the processor call.
    """

    name: str
    build_model: Callable[[], Any]
    build_processor: Callable[[], Any]
    frames: int
    frame_size: tuple[int, int]
    frames_per_unit: int = 1
    unit_block: str | None = None
    trailing: int = 0
    mrope: bool = False
    encoder_key: str = "video"
    processor_kwargs: dict = field(default_factory=dict)

    @property
    def frames_per_group(self) -> int:
        return 2 * self.frames_per_unit  # two units per group

    def model(self, seed: int = 0) -> Any:
        torch.manual_seed(seed)
        model = self.build_model().eval()
        model.set_attn_implementation("sdpa")
        return model

    def video(self, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, 255, (self.frames, *self.frame_size, 3), dtype=np.uint8)

    def inputs(self, processor: Any, seed: int = 0) -> dict:
        """The processor's output for the test video and question (what a user passes to generate)."""
        from transformers.video_utils import VideoMetadata

        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUESTION}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        metadata = VideoMetadata(total_num_frames=self.frames, fps=FPS, frames_indices=list(range(self.frames)))
        out = processor(text=[text], videos=[self.video(seed)], return_tensors="pt", do_sample_frames=False,
                        video_metadata=[metadata], **self.processor_kwargs)
        return dict(out)


QWEN_PIXELS = dict(do_resize=False, cap_pixels_per_frame=False)
FAMILIES: dict[str, Family] = {f.name: f for f in [
    Family("qwen2_vl", _qwen2_vl, _qwen_processor("Qwen2VLProcessor", 14), frames=8, frame_size=(56, 56),
           frames_per_unit=2, mrope=True, processor_kwargs=QWEN_PIXELS),
    Family("qwen2_5_vl", _qwen2_5_vl, _qwen_processor("Qwen2_5_VLProcessor", 14), frames=8, frame_size=(56, 56),
           frames_per_unit=2, mrope=True, processor_kwargs=QWEN_PIXELS),
    Family("qwen3_vl", _qwen3_vl, _qwen_processor("Qwen3VLProcessor", 16), frames=8, frame_size=(64, 64),
           frames_per_unit=2, mrope=True, processor_kwargs=QWEN_PIXELS,
           unit_block=r"<\d+\.\d seconds>\{S}\{V}+\{E}"),
    Family("internvl", _internvl, _internvl_processor, frames=4, frame_size=(16, 16), encoder_key="image",
           unit_block=r"\nFrame\d+: \{I}\{C}+\{J}"),
    Family("llava_onevision", _llava_onevision, _llava_onevision_processor, frames=4, frame_size=(16, 16),
           trailing=1),
    Family("llava_next_video", _llava_next_video, _llava_next_video_processor, frames=4, frame_size=(16, 16)),
]}


# --- what the processor wrote, read independently of the plugin --------------------------------
_SYMBOLS = {"S": "<|vision_start|>", "E": "<|vision_end|>", "V": "<|video_pad|>", "I": "<img>", "J": "</img>",
            "C": "<IMG_CONTEXT>"}


def token_string(ids: torch.Tensor) -> str:
    """One character per token: the byte for text tokens, a private-use character for special tokens."""
    tok = tokenizer()
    return "".join(tok.convert_tokens_to_string([t]) if i < 256 else chr(0xE000 + i)
                   for i, t in zip(ids.tolist(), tok.convert_ids_to_tokens(ids.tolist())))


def _pattern(block: str) -> str:
    for key, token in _SYMBOLS.items():
        block = block.replace("\\{" + key + "}", re.escape(chr(0xE000 + tid(token))))
    return block


@dataclass
class UnitSpans:
    """Where each unit sits in the full sequence: block [start, stop) and its visual tokens [first, last)."""

    blocks: list[tuple[int, int]]
    visual: list[tuple[int, int]]
    trailing: list[int]


def unit_spans(family: Family, input_ids: torch.Tensor, placeholder: int, tokens_per_unit: int) -> UnitSpans:
    """Every unit's block in the processor's `input_ids` (L,), found with the family's own format."""
    ids = input_ids.tolist()
    where = [i for i, t in enumerate(ids) if t == placeholder]
    if family.unit_block is None:
        units = (len(where) - family.trailing) // tokens_per_unit
        visual = [(where[u * tokens_per_unit], where[u * tokens_per_unit] + tokens_per_unit) for u in range(units)]
        return UnitSpans(visual, visual, where[units * tokens_per_unit:])
    text = token_string(input_ids)
    blocks, visual = [], []
    for match in re.finditer(_pattern(family.unit_block), text):
        inside = [i for i in range(match.start(), match.end()) if ids[i] == placeholder]
        blocks.append((match.start(), match.end()))
        visual.append((inside[0], inside[-1] + 1))
    return UnitSpans(blocks, visual, [])


def expected_columns(spans: UnitSpans, length: int, kept: torch.Tensor, tokens_per_unit: int) -> torch.Tensor:
    """Columns of the full sequence a final pass keeping the visual tokens `kept` must hold: all text
    outside the units, the trailing placeholders, and for every unit with kept tokens its text and
    exactly those tokens; a unit with none is dropped with its text."""
    drop = set()
    for unit, ((start, stop), (first, last)) in enumerate(zip(spans.blocks, spans.visual)):
        cells = set((kept[(kept // tokens_per_unit) == unit] % tokens_per_unit).tolist())
        if not cells:
            drop.update(range(start, stop))
        else:
            drop.update(first + c for c in range(last - first) if c not in cells)
    return torch.tensor([i for i in range(length) if i not in drop])


def features(family: Family, model: Any, inputs: dict) -> Any:
    """The model's own encoder output for the whole processor input (pixel keys only)."""
    with torch.no_grad():
        if family.encoder_key == "image":
            return model.model.get_image_features(pixel_values=inputs["pixel_values"])
        if family.mrope:
            return model.model.get_video_features(pixel_values_videos=inputs["pixel_values_videos"],
                                                  video_grid_thw=inputs["video_grid_thw"])
        return model.model.get_video_features(pixel_values_videos=inputs["pixel_values_videos"])


def kept_encoder_outputs(family: Family, encoded: Any, kept: torch.Tensor) -> dict:
    """`mm_encoder_outputs` holding the rows `kept` of the full encoder output (plus the trailing rows)."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    if family.mrope:
        main = torch.cat(encoded.pooler_output)
        rows = (main[kept],)
        if getattr(encoded, "deepstack_features", None) is not None:
            from transformers.models.qwen3_vl.modeling_qwen3_vl import BaseModelOutputWithDeepstackFeatures

            levels = [(torch.cat(level)[kept],) for level in encoded.deepstack_features]
            return {"video": BaseModelOutputWithDeepstackFeatures(pooler_output=rows, deepstack_features=levels)}
        return {"video": BaseModelOutputWithPooling(pooler_output=rows)}
    flat = encoded.pooler_output.reshape(-1, encoded.pooler_output.shape[-1])
    units = len(flat) - family.trailing
    rows = torch.cat([flat[kept], flat[units:]])
    return {family.encoder_key: BaseModelOutputWithPooling(pooler_output=rows[None])}
