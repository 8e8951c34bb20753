"""`needle`: one short event in an option colour; "what colour?" (the needle task of `adapttoken_plugin.needle`).

The question's position, length, colour and shape come from `needle.make_question` with the same seed;
it is drawn as a still event (the needle module moves it every frame) at the larger frame size.
"""

from __future__ import annotations

import numpy as np

from .. import needle
from .base import COLOUR_OPTIONS, Task, TaskQuestion, one_hot_or_uniform, option_event, register_task


def make(seed: int, num_frames: int) -> TaskQuestion:
    nq = needle.make_question(seed, num_frames)
    rng = np.random.default_rng((seed, 1))
    event = option_event(rng, tuple(nq.needle_frames), nq.colour, (0.25, 0.36))
    return TaskQuestion("needle", seed, num_frames, needle.QUESTION, COLOUR_OPTIONS,
                        COLOUR_OPTIONS.index(nq.colour), (event,), nq.distractor_rate)


def answer_distribution(q: TaskQuestion, seen: set[int]) -> np.ndarray:
    return one_hot_or_uniform(q.answer_index if seen else None)


TASK = register_task(Task("needle", make, answer_distribution,
                          "one brief large shape in an option colour: which colour"))
