"""A tiny Qwen2.5-VL-architecture model and its processor, built in code with no download.

Used by the demo (`adapttoken demo`), the tests and the benchmarks. The tokenizer is byte-level (any
text encodes, one token per byte) plus Qwen's special tokens; the weights are random unless loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

NEEDLE_MODEL_DIR = Path(__file__).parent / "assets" / "needle-toy"
TASKS_MODEL_DIR = Path(__file__).parent / "assets" / "tasks-toy"

SPECIAL_TOKENS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def toy_tokenizer() -> Any:
    """Byte-level Qwen2 tokenizer: ids 0-255 are bytes, then <|endoftext|> and Qwen's specials."""
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token="<|endoftext|>", eos_token="<|im_end|>",
                         pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS})
    return tok


def toy_processor(min_pixels: int = 56 * 56, max_pixels: int = 112 * 112) -> Any:
    """A real `Qwen2_5_VLProcessor` around the byte-level tokenizer (frames of at most 112 x 112 px)."""
    from transformers import Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels),
        tokenizer=toy_tokenizer(),
        video_processor=Qwen2VLVideoProcessor(min_pixels=min_pixels, max_pixels=max_pixels),
        chat_template=CHAT_TEMPLATE,
    )


def toy_config(tokenizer: Any = None, num_layers: int = 4, hidden_size: int = 64, vision_depth: int = 2) -> Any:
    """Qwen2.5-VL config sized for a CPU: vocabulary and special ids taken from `tokenizer`."""
    from transformers import Qwen2_5_VLConfig

    tok = tokenizer or toy_tokenizer()
    ids = dict(zip(SPECIAL_TOKENS, tok.convert_tokens_to_ids(SPECIAL_TOKENS)))
    heads = max(2, hidden_size // 16)
    head_dim = hidden_size // heads
    section = [head_dim // 4, head_dim // 8, head_dim // 2 - head_dim // 4 - head_dim // 8]
    text = dict(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                num_hidden_layers=num_layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                max_position_embeddings=32768, bos_token_id=tok.pad_token_id, eos_token_id=ids["<|im_end|>"],
                pad_token_id=tok.pad_token_id,
                rope_parameters={"rope_type": "default", "mrope_section": section, "rope_theta": 10000.0})
    vision = dict(depth=vision_depth, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                  num_heads=max(2, hidden_size // 16), out_hidden_size=hidden_size, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2, window_size=112,
                  fullatt_block_indexes=[vision_depth - 1], in_channels=3)
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                            video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                            vision_end_token_id=ids["<|vision_end|>"])


def toy_model(seed: int = 0, **config_kwargs: Any) -> Any:
    """A random-weight tiny `Qwen2_5_VLForConditionalGeneration` (float32, sdpa attention, eval mode)."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(toy_config(**config_kwargs)).eval()
    model.set_attn_implementation("sdpa")
    return model


def load_needle_model(path: str | Path = NEEDLE_MODEL_DIR) -> tuple[Any, Any]:
    """The bundled trained needle toy model (made by scripts/train_toy_model.py) and its processor; no network."""
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from .errors import AdaptTokenError

    path = Path(path)
    if not (path / "config.json").exists():
        raise AdaptTokenError(f"no trained toy model at {path}; scripts/train_toy_model.py makes needle-toy, "
                              "scripts/train_tasks_model.py tasks-toy")
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(path).eval()
    model.set_attn_implementation("sdpa")
    return model, AutoProcessor.from_pretrained(path)


def load_tasks_model(path: str | Path = TASKS_MODEL_DIR) -> tuple[Any, Any]:
    """The bundled toy model trained on the benchmark tasks (`bench_tasks`, 112 x 112 px frames; made by
    scripts/train_tasks_model.py) and its processor; no network."""
    return load_needle_model(path)
