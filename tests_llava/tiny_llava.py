"""A tiny random-weight `LlavaQwenForCausalLM` of the installed LLaVA-NeXT fork (`llavaction`), built in code.

The fork's loader builds its vision tower from a checkpoint directory (`mm_vision_tower`, any existing
local path goes to `CLIPVisionTower`), so a tiny CLIP vision model and image processor are saved to a
temporary directory first; nothing is downloaded.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

PACKAGE = "llavaction"
VOCAB = 200
IMAGE_SIZE, PATCH = 32, 4          # 8 x 8 patches per frame -> 4 x 4 tokens after the fork's 2-D pooling
PROMPT_PREFIX = (5, 6, 7, 8)
PROMPT_SUFFIX = (10, 11, 12, 13, 14, 15)


def save_vision_tower(directory: Path) -> Path:
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(1)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              image_size=IMAGE_SIZE, patch_size=PATCH)
    CLIPVisionModel(config).save_pretrained(directory)
    CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
                       ).save_pretrained(directory)
    return directory


def llava_qwen(vision_dir: Path, seed: int = 0, num_layers: int = 3, package: str = PACKAGE, **overrides):
    """A tiny LlavaQwenForCausalLM of the fork `package` (sdpa attention), random weights and a random newline."""
    module = importlib.import_module(f"{package}.model.language_model.llava_qwen")
    LlavaQwenConfig, LlavaQwenForCausalLM = module.LlavaQwenConfig, module.LlavaQwenForCausalLM  # noqa: N806

    settings = dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=num_layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, bos_token_id=0,
        eos_token_id=1, pad_token_id=2, tie_word_embeddings=False, sliding_window=None,
        mm_vision_tower=str(vision_dir), mm_hidden_size=32, mm_projector_type="mlp2x_gelu",
        mm_vision_select_layer=-2, mm_vision_select_feature="patch", mm_patch_merge_type="spatial_unpad",
        mm_newline_position="grid", mm_spatial_pool_mode="bilinear", image_aspect_ratio="anyres_max_9",
        mm_use_im_start_end=False, mm_use_im_patch_token=False,
    )
    settings.update(overrides)
    config = LlavaQwenConfig(**settings)
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    model = LlavaQwenForCausalLM(config).eval()
    if hasattr(model.get_model(), "image_newline"):
        with torch.no_grad():  # the fork allocates it with torch.empty (the checkpoint fills it)
            model.get_model().image_newline.copy_(torch.randn(config.hidden_size))
    return model


def video(frames: int, seed: int = 0) -> torch.Tensor:
    """(frames, 3, S, S) preprocessed-looking frames."""
    return torch.randn(frames, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(seed))


def prompt_ids(image_token_index: int = -200) -> torch.Tensor:
    """(1, L) a prompt as the fork's `tokenizer_image_token` writes it: text, one `<image>` id, text."""
    return torch.tensor([[*PROMPT_PREFIX, image_token_index, *PROMPT_SUFFIX]])


def lmms_checkpoint(directory: Path) -> Path:
    """A tiny LLaVA-Video-like checkpoint: the fork's model, a CLIP tower, a word-level tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    path = directory / "tiny-llava-qwen"  # the fork's loader picks its class from "llava" and "qwen" in the name
    llava_qwen(save_vision_tower(directory / "clip")).save_pretrained(path)
    tokenizer = Tokenizer(models.WordLevel({f"t{i}": i for i in range(150)}, unk_token="t3"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(["<|im_end|>", "<|im_start|>"])  # the template's stop word is one token
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="t2", eos_token="t1").save_pretrained(path)
    return path


def noise_video(path: Path, frames: int = 32, fps: int = 4) -> Path:
    """An mp4 of random 64 x 64 frames."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    return path
