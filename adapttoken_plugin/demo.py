"""The bundled demo: a synthetic video and a tiny model, both made locally (no download).

The model has random weights, so its answer is arbitrary: the demo shows the plumbing (sampling,
groups, entropies, budgets, kept tokens, stage timings), not accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

DEMO_QUESTION = "What colour is the square that appears once?"
DEMO_OPTIONS = ["red", "green", "blue", "yellow"]
DEMO_BUDGET = 256


def demo_frames(num_frames: int = 512, size: int = 112, seed: int = 0):
    """Frames (size, size, 3) uint8: a grey square drifting over noise; a red square for 8 frames mid-video."""
    rng = np.random.default_rng(seed)
    needle = range(num_frames // 2, num_frames // 2 + 8)
    for i in range(num_frames):
        frame = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
        x = (i * 3) % (size - 32)
        frame[40:72, x:x + 32] = (255, 0, 0) if i in needle else (160, 160, 160)
        yield frame


def write_demo_video(path: str | Path, num_frames: int = 512, fps: float = 2.0) -> Path:
    """Write the demo video (256 s at 2 fps by default) unless it already exists."""
    from .video import write_video

    path = Path(path)
    if not path.exists():
        write_video(path, demo_frames(num_frames), fps=fps)
    return path


def demo_model_and_processor() -> tuple[Any, Any]:
    """The tiny random-weight Qwen2.5-VL-architecture model and its offline processor."""
    from .toy import toy_model, toy_processor

    return toy_model(), toy_processor()
