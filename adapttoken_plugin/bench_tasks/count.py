"""`count`: a shape in one option colour flashes 1-4 times; "how many times?" (options 1, 2, 3, 4).

Each flash covers exactly one frame pair (two frames from an even index: one temporal token of
Qwen2.5-VL), so a flash is one frame unit and counting flashes is counting units that show the colour;
flashes are at least two frame pairs apart. The answer needs every flash: a group or a selection that
sees only some of them answers a smaller count, with confidence (the toy model is trained to count what
it sees), which the entropy signal cannot tell from a right answer.
"""

from __future__ import annotations

import numpy as np

from .base import COLOUR_OPTIONS, Task, TaskQuestion, one_hot_or_uniform, option_event, place, register_task

QUESTION = "How many times did the coloured shape flash?"
OPTIONS = ("1", "2", "3", "4")


def make(seed: int, num_frames: int) -> TaskQuestion:
    rng = np.random.default_rng((seed, 3))
    flashes = int(rng.integers(1, 5))
    colour = COLOUR_OPTIONS[int(rng.integers(4))]
    taken: list[tuple[int, int]] = []
    spans = sorted(place(rng, num_frames, 2, taken, gap=4, even=True) for _ in range(flashes))
    events = tuple(option_event(rng, frames, colour, (0.22, 0.32)) for frames in spans)
    return TaskQuestion("count", seed, num_frames, QUESTION, OPTIONS, flashes - 1, events)


def answer_distribution(q: TaskQuestion, seen: set[int]) -> np.ndarray:
    return one_hot_or_uniform(len(seen) - 1 if seen else None)


TASK = register_task(Task("count", make, answer_distribution, "1-4 one-pair flashes of one colour: how many"))
