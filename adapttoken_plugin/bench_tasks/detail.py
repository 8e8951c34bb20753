"""`detail`: a small shape in an option colour, inside one visual token; "what colour was the small shape?".

The shape (a square or a disc, `base.small_event`) is 18-25 px across, drawn for 4-8 frames inside one
28 px token cell of the 112 px frame (4 x 4 tokens per frame pair): it covers 2-5% of the frame and one
of its sixteen tokens. A selection that keeps the right frames but not that token loses the answer, so
this task tells token-level selection from frame-level selection (the needle's shape covers a quarter of
the frame or more).
"""

from __future__ import annotations

import numpy as np

from .base import COLOUR_OPTIONS, Task, TaskQuestion, one_hot_or_uniform, place, register_task, small_event

QUESTION = "What colour was the small shape?"


def make(seed: int, num_frames: int) -> TaskQuestion:
    rng = np.random.default_rng((seed, 4))
    colour = int(rng.integers(4))
    frames = place(rng, num_frames, int(rng.integers(4, 9)), [], gap=0)
    event = small_event(rng, frames, COLOUR_OPTIONS[colour])
    return TaskQuestion("detail", seed, num_frames, QUESTION, COLOUR_OPTIONS, colour, (event,))


def answer_distribution(q: TaskQuestion, seen: set[int]) -> np.ndarray:
    return one_hot_or_uniform(q.answer_index if seen else None)


TASK = register_task(Task("detail", make, answer_distribution, "a small shape inside one token: which colour"))
