"""The bundled demo: a needle video made locally from a fixed seed, and the bundled trained toy model.

The toy model (a small Qwen2.5-VL-architecture model, `scripts/train_toy_model.py`) learnt to name
the colour of a large shape that appears for a few frames in a long video of distractors; the demo
asks it about a 1,024-frame video with a 128-token budget (1/16 of the visual tokens).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .needle import VIDEO_FPS, NeedleQuestion, make_question, write_video_file

DEMO_SEED = 7
DEMO_FRAMES = 1024
DEMO_BUDGET = 128
DEMO_SETTINGS = {"budget": DEMO_BUDGET, "fps": VIDEO_FPS, "max_frames": DEMO_FRAMES}


def demo_question() -> NeedleQuestion:
    return make_question(DEMO_SEED, DEMO_FRAMES)


def write_demo_video(path: str | Path, on_frame: Callable[[int, int], None] | None = None) -> Path:
    """Write the demo video (1,024 frames at 4 fps, 56 x 56 px) unless a complete one is there
    (`needle.write_video_file`); `on_frame(done, total)` after each frame written."""
    return write_video_file(demo_question(), path, on_frame=on_frame)


def demo_model_and_processor() -> tuple[Any, Any]:
    """The bundled trained toy model and its processor (no network)."""
    from .toy import load_needle_model

    return load_needle_model()
