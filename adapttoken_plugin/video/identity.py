"""What identifies a video's content cheaply, for per-question random draws (`Query.video_key`)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

#: bytes read from each end of a file: enough to tell videos apart without reading an hour of video
EDGE_BYTES = 1 << 20


def video_key_of_file(path: str | Path) -> str:
    """sha256 of the file's size and its first and last MiB (the same on any machine and any copy of the file).

    Raises FileNotFoundError for a missing file (callers check videos before they get here)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        digest.update(f.read(EDGE_BYTES))
        if size > EDGE_BYTES:
            f.seek(max(EDGE_BYTES, size - EDGE_BYTES), os.SEEK_SET)
            digest.update(f.read(EDGE_BYTES))
    return digest.hexdigest()


def video_key_of_tensor(pixels: torch.Tensor) -> str:
    """sha256 of an in-memory video's pixel tensor (shape, dtype and values)."""
    data = pixels.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{tuple(data.shape)} {data.dtype}".encode())
    digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()
