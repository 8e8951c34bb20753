"""`salient-order`: a long, large event and a brief, small one; "which colour appeared first?".

The `order` question with uneven evidence: one event is a large shape (a quarter to a third of the frame
side in radius) shown for 8-15% of the video, the other a small shape inside one visual token
(`base.small_event`) shown for 2-6 frames; either may come first. The large event holds far more tokens
than a tight budget (at 1/64 of the tokens, several times more), all of them answer-bearing and all of
them drawing attention, so a selection that ranks every token of the video at once can spend the whole
budget on it and never keep the small one, which leaves the answer at 1/2; a selection that budgets each
group of frames keeps the small event's token in its own group. This is the case for per-group budgets
(and for de-duplicating a long event's repeated tokens) against one global top-k.
"""

from __future__ import annotations

import numpy as np

from . import order
from .base import COLOUR_OPTIONS, Task, TaskQuestion, option_event, place, register_task, small_event

LONG_SHARE = (0.08, 0.15)  # of the video's frames, at least 4 frames


def make(seed: int, num_frames: int) -> TaskQuestion:
    rng = np.random.default_rng((seed, 6))
    first, second = (int(c) for c in rng.choice(4, 2, replace=False))
    taken: list[tuple[int, int]] = []
    long_frames = place(rng, num_frames, max(4, round(num_frames * rng.uniform(*LONG_SHARE))), taken, gap=4)
    short_frames = place(rng, num_frames, int(rng.integers(2, 7)), taken, gap=4)
    long_first = long_frames[0] < short_frames[0]
    colour_long, colour_short = (first, second) if long_first else (second, first)
    events = (option_event(rng, long_frames, COLOUR_OPTIONS[colour_long], (0.25, 0.36)),
              small_event(rng, short_frames, COLOUR_OPTIONS[colour_short]))
    return TaskQuestion("salient-order", seed, num_frames, order.QUESTION, COLOUR_OPTIONS, first,
                        tuple(sorted(events, key=lambda e: e.frames[0])))


TASK = register_task(Task("salient-order", make, order.answer_distribution,
                          "a long large event and a brief small one: which colour came first"))
