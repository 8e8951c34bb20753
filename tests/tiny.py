"""Tiny random-weight models and inputs, built in code from configs (nothing is downloaded)."""

from __future__ import annotations

import torch

V = 300
IMG, VID, VSTART, VEND = 290, 291, 292, 293
LETTERS = {"A": 65, "B": 66, "C": 67, "D": 68}


def qwen2_5_vl_config(num_layers: int = 3, tokens_per_second: int = 2):
    from transformers import Qwen2_5_VLConfig

    text = dict(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=num_layers,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192, bos_token_id=0,
                eos_token_id=1, pad_token_id=2,
                rope_parameters={"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0})
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, out_hidden_size=32, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=tokens_per_second, window_size=112,
                  fullatt_block_indexes=[1], in_channels=3)
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=IMG, video_token_id=VID,
                            vision_start_token_id=VSTART, vision_end_token_id=VEND)


def qwen2_5_vl(seed: int = 0, **kw):
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(qwen2_5_vl_config(**kw)).eval()
    model.set_attn_implementation("sdpa")
    return model


def qwen_video_inputs(units: int = 8, grid_h: int = 4, grid_w: int = 4, seconds_per_unit: float = 1.0,
                      prefix=(5, 6, 7), suffix=(8, 9, 10, 11, 12), seed: int = 0) -> dict:
    """Processor-shaped inputs: units frame pairs of grid_h x grid_w patches (merged 2x2 -> tokens)."""
    g = torch.Generator().manual_seed(seed)
    n_tok = units * grid_h * grid_w // 4
    ids = list(prefix) + [VSTART] + [VID] * n_tok + [VEND] + list(suffix)
    input_ids = torch.tensor([ids])
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values_videos": torch.randn(units * grid_h * grid_w, 3 * 2 * 14 * 14, generator=g),
        "video_grid_thw": torch.tensor([[units, grid_h, grid_w]]),
        "second_per_grid_ts": torch.tensor([seconds_per_unit]),
        "mm_token_type_ids": (input_ids == VID).int() * 2,
    }
