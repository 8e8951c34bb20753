"""`detail`: a shape split down the middle into two option colours; "what colour was its left (right) half?".

The split is at the frame's vertical centre line, which is a token boundary at 112 px (4 x 4 tokens of
28 px per frame pair), so the two halves fall in different tokens: the answer needs tokens of the half
asked about, not just any token of the event.
"""

from __future__ import annotations

import numpy as np

from ..needle import OPTION_RGB
from .base import COLOUR_OPTIONS, Event, Task, TaskQuestion, one_hot_or_uniform, place, register_task

QUESTIONS = {"left": "What colour was the left half of the split shape?",
             "right": "What colour was the right half of the split shape?"}


def make(seed: int, num_frames: int) -> TaskQuestion:
    rng = np.random.default_rng((seed, 4))
    left, right = (int(c) for c in rng.choice(4, 2, replace=False))
    asked = ("left", "right")[int(rng.integers(2))]
    frames = place(rng, num_frames, int(rng.integers(4, 9)), [], gap=0)
    radius = float(rng.uniform(0.25, 0.36))
    centre = (float(rng.uniform(radius, 1 - radius)), 0.5)  # the split on the token boundary x = 56 px
    shape = ("square", "disc")[int(rng.integers(2))]
    events = tuple(Event(frames, OPTION_RGB[COLOUR_OPTIONS[c]], shape, centre, radius, half=h)
                   for c, h in ((left, "left"), (right, "right")))
    return TaskQuestion("detail", seed, num_frames, QUESTIONS[asked], COLOUR_OPTIONS,
                        left if asked == "left" else right, events)


def answer_distribution(q: TaskQuestion, seen: set[int]) -> np.ndarray:
    return one_hot_or_uniform(q.answer_index if seen else None)


TASK = register_task(Task("detail", make, answer_distribution, "a shape split into two option colours: one half's"))
