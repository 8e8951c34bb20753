"""`count`: a square in one option colour flashes 1-4 times; "how many times?" (options 1, 2, 3, 4).

Each flash covers exactly one frame pair (two frames from an even index: one temporal token of
Qwen2.5-VL), so a flash is one frame unit and counting flashes is counting units that show the colour;
flashes are at least two frame pairs apart. Every flash is the same token-aligned square of 2 x 2
visual tokens (56 px at a multiple of 28 px), so each adds the same number of coloured tokens: the
count is in how many units show the colour, not confounded with how large each flash happened to be.
The answer needs every flash: a group or a selection that sees only some of them answers a smaller
count, with confidence (the toy model is trained to count what it sees), which the entropy signal
cannot tell from a right answer.
"""

from __future__ import annotations

import numpy as np

from ..needle import OPTION_RGB
from .base import (
    COLOUR_OPTIONS,
    FRAME_SIDE,
    TOKEN_SIDE,
    Event,
    Task,
    TaskQuestion,
    one_hot_or_uniform,
    place,
    register_task,
)

QUESTION = "How many times did the coloured shape flash?"
OPTIONS = ("1", "2", "3", "4")
FLASH_TOKENS = 2  # a flash is FLASH_TOKENS x FLASH_TOKENS visual tokens


def make(seed: int, num_frames: int) -> TaskQuestion:
    rng = np.random.default_rng((seed, 3))
    flashes = int(rng.integers(1, 5))
    colour = COLOUR_OPTIONS[int(rng.integers(4))]
    taken: list[tuple[int, int]] = []
    spans = sorted(place(rng, num_frames, 2, taken, gap=4, even=True) for _ in range(flashes))
    cells = FRAME_SIDE // TOKEN_SIDE - FLASH_TOKENS + 1  # token-aligned top-left corners per axis
    radius = FLASH_TOKENS * TOKEN_SIDE / 2 / FRAME_SIDE
    events = []
    for frames in spans:
        corner = rng.integers(0, cells, 2) * TOKEN_SIDE / FRAME_SIDE
        centre = (float(corner[0] + radius), float(corner[1] + radius))
        events.append(Event(frames, OPTION_RGB[colour], "square", centre, radius))
    return TaskQuestion("count", seed, num_frames, QUESTION, OPTIONS, flashes - 1, tuple(events))


def answer_distribution(q: TaskQuestion, seen: set[int]) -> np.ndarray:
    return one_hot_or_uniform(len(seen) - 1 if seen else None)


TASK = register_task(Task("count", make, answer_distribution,
                          "1-4 one-pair flashes of a 2 x 2-token square in one colour: how many"))
