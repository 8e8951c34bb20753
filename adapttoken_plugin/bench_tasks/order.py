"""`order`: two short events in different option colours; "which colour appeared first?" (temporal order).

Seen alone, either event leaves the answer open: it is first with probability 1/2, and otherwise one
of the three other colours is, so the target given one event is 1/2 on its colour and 1/6 on the others
(entropy 1.24 nats); only both events together answer the question.
"""

from __future__ import annotations

import numpy as np

from .base import COLOUR_OPTIONS, Task, TaskQuestion, one_hot_or_uniform, option_event, place, register_task

QUESTION = "Which colour appeared first?"


def make(seed: int, num_frames: int) -> TaskQuestion:
    rng = np.random.default_rng((seed, 2))
    first, second = (int(c) for c in rng.choice(4, 2, replace=False))
    taken: list[tuple[int, int]] = []
    # a gap of 4 frames (two frame pairs) so the two events never share a frame pair
    spans = sorted(place(rng, num_frames, int(rng.integers(2, 7)), taken, gap=4) for _ in range(2))
    events = tuple(option_event(rng, frames, COLOUR_OPTIONS[c], (0.22, 0.32)) for frames, c in zip(spans, (first,
                                                                                                        second)))
    return TaskQuestion("order", seed, num_frames, QUESTION, COLOUR_OPTIONS, first, events)


def answer_distribution(q: TaskQuestion, seen: set[int]) -> np.ndarray:
    if len(seen) != 1:
        return one_hot_or_uniform(q.answer_index if seen else None)
    p = np.full(4, 1 / 6)
    p[COLOUR_OPTIONS.index(_colour(q, next(iter(seen))))] = 0.5
    return p


def _colour(q: TaskQuestion, index: int) -> str:
    from ..needle import OPTION_RGB

    rgb = q.events[index].rgb
    return next(c for c in COLOUR_OPTIONS if OPTION_RGB[c] == rgb)


TASK = register_task(Task("order", make, answer_distribution, "two events in option colours: which came first"))
