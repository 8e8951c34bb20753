"""Loading a checkpoint as the commands do (`adapttoken answer`, `adapttoken ablate`): the unmodified
transformers model and its processor, or the bundled trained toy model when no path is given.

Its own module so that every command imports it from here instead of from another command.
"""

from __future__ import annotations

from typing import Any

from .checks import check_device, check_dtype


def load_model(path: str | None, device: str, dtype: str) -> tuple[Any, Any]:
    """A checkpoint's unmodified transformers model (eval mode, on `device`) and its processor.

    Args:
        path: local model directory or hub id of a supported class (`AutoModelForImageTextToText`);
            None: the bundled trained toy model (`toy.load_needle_model`, no download) in its saved
            dtype (float32); `dtype` is not applied to it.
        device: torch device to move the model to.
        dtype: `auto` (the checkpoint's own), or a torch dtype name: `float32`, `bfloat16`, `float16`.
    Raises:
        ConfigError: an unknown dtype, or a device that is not a torch device or that this machine lacks
            (checked before anything loads).
    """
    check_dtype(dtype)
    check_device(device)
    if path is None:
        from .toy import load_needle_model

        model, processor = load_needle_model()
        return model.to(device), processor
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch_dtype).to(device).eval()
    return model, AutoProcessor.from_pretrained(path)
