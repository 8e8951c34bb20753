"""`distractor`: a still shape in an option colour among many salient decoys; "what colour was the still shape?".

Decoys are large, moving shapes in colours that are never options, one starting about every 12 frames
throughout the video (so every group and every part of the video has them); the evidence is smaller
(a fifth of the side in radius) and still. Attention drawn to whatever is salient keeps decoys.
"""

from __future__ import annotations

import numpy as np

from ..needle import DISTRACTOR_RGB
from .base import (
    BACKGROUND_SHAPES,
    COLOUR_OPTIONS,
    Event,
    Task,
    TaskQuestion,
    one_hot_or_uniform,
    option_event,
    place,
    register_task,
)

QUESTION = "Ignoring the moving shapes, what colour was the still shape?"
DECOY_EVERY = 12  # frames between decoy starts, on average


def make(seed: int, num_frames: int) -> TaskQuestion:
    rng = np.random.default_rng((seed, 5))
    colour = int(rng.integers(4))
    evidence = option_event(rng, place(rng, num_frames, int(rng.integers(4, 9)), [], gap=0),
                            COLOUR_OPTIONS[colour], (0.16, 0.22))
    decoys = []
    start = int(rng.integers(0, DECOY_EVERY))
    while start < num_frames:
        length = int(rng.integers(4, 13))
        r = float(rng.uniform(0.3, 0.4))
        decoys.append(Event(tuple(range(start, min(start + length, num_frames))),
                            DISTRACTOR_RGB[int(rng.integers(len(DISTRACTOR_RGB)))],
                            BACKGROUND_SHAPES[int(rng.integers(3))], (float(rng.uniform(0.2, 0.8)), 0.1),
                            r, velocity=(float(rng.uniform(-0.02, 0.02)), float(rng.uniform(0.04, 0.07))),
                            evidence=False))
        start += int(rng.integers(DECOY_EVERY // 2, DECOY_EVERY * 3 // 2 + 1))
    return TaskQuestion("distractor", seed, num_frames, QUESTION, COLOUR_OPTIONS, colour, (evidence, *decoys))


def answer_distribution(q: TaskQuestion, seen: set[int]) -> np.ndarray:
    return one_hot_or_uniform(q.answer_index if seen else None)


TASK = register_task(Task("distractor", make, answer_distribution,
                          "a small still shape in an option colour among large moving decoys: which colour"))
