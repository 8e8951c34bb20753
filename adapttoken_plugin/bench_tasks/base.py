"""What every benchmark task shares: events, questions, the registry of tasks, rendering and writing.

A task question is a background video (the needle task's: tinted noise, a drifting grey shape and
occasional large shapes in colours that are never options) with a few `Event`s drawn over it. The
events marked `evidence` hold the answer; the others are decoys. Rendering is deterministic by the
question's seed, and an event's pixels depend only on (seed, event, frame), so the same question
rendered without its evidence (`iter_frames(q, shown=set())`) differs only where the evidence was:
the minimal pair the toy model is trained on and the tests check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..needle import LETTERS, OPTION_RGB, OPTIONS, VIDEO_FPS, render_frame

FRAME_SIDE = 112  # 4 x 4 visual tokens per Qwen2.5-VL frame pair (28 px per token): room for spatial detail
TOKEN_SIDE = 28  # pixels per visual token side (14 px patches merged 2 x 2)
COLOUR_OPTIONS = OPTIONS  # A red, B green, C blue, D yellow, as in the needle task
BACKGROUND_SHAPES = ("square", "disc", "diamond")


@dataclass(frozen=True)
class Event:
    """A shape drawn over some frames.

    Attributes:
        frames: frame indices it is drawn in (ascending).
        rgb: its colour.
        shape: "square", "disc" or "diamond".
        centre: (y, x) of its centre in the first frame, in fractions of the frame side.
        radius: half its width, in fractions of the side.
        velocity: (dy, dx) per frame, in fractions of the side (decoys move; evidence stays still).
        evidence: whether the answer depends on it.
    """

    frames: tuple[int, ...]
    rgb: tuple[int, int, int]
    shape: str
    centre: tuple[float, float]
    radius: float
    velocity: tuple[float, float] = (0.0, 0.0)
    evidence: bool = True


@dataclass(frozen=True)
class TaskQuestion:
    """One four-option question about a generated video.

    Attributes:
        task: the task's registered name.
        seed: what fixes the question and every pixel of its video.
        num_frames: frames in the video (at `VIDEO_FPS`).
        question: the question text (without options).
        options: the four option texts, in the order of the letters A-D.
        answer_index: index of the right option.
        events: evidence and decoy events drawn over the background.
        distractor_rate: share of background frames with a large shape in a non-option colour.
    """

    task: str
    seed: int
    num_frames: int
    question: str
    options: tuple[str, ...]
    answer_index: int
    events: tuple[Event, ...]
    distractor_rate: float = 0.05

    @property
    def answer_letter(self) -> str:
        return LETTERS[self.answer_index]

    @property
    def evidence_frames(self) -> list[int]:
        """Frame indices that show evidence (ascending): what the oracle keeps and `evidence kept` counts."""
        return sorted({t for e in self.events if e.evidence for t in e.frames})

    @property
    def evidence_events(self) -> list[Event]:
        return [e for e in self.events if e.evidence]

    def to_dict(self) -> dict:
        return {**asdict(self), "answer": self.answer_letter, "evidence_frames": self.evidence_frames}


@dataclass(frozen=True)
class Task:
    """A registered question type.

    Attributes:
        name: registry key.
        make: (seed, num_frames) -> TaskQuestion, deterministic by seed.
        answer_distribution: (question, indices of the evidence events the model can see) -> (4,) the
            probability of each option given only that evidence: what the toy model is trained towards.
        summary: one line for listings and docs.
    """

    name: str
    make: Callable[[int, int], TaskQuestion]
    answer_distribution: Callable[[TaskQuestion, set[int]], np.ndarray]
    summary: str


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    TASKS[task.name] = task
    return task


def one_hot_or_uniform(index: int | None) -> np.ndarray:
    """(4,) one-hot at `index`, or uniform when the evidence is not seen (index None)."""
    p = np.full(4, 0.25)
    if index is not None:
        p[:] = 0.0
        p[index] = 1.0
    return p


def place(rng: np.random.Generator, num_frames: int, length: int, taken: list[tuple[int, int]], gap: int,
          even: bool = False) -> tuple[int, ...]:
    """Frames of a new event of `length` frames at a random start at least `gap` frames from every
    (start, end) in `taken`, which it is added to; `even`: start on an even frame (one Qwen frame pair)."""
    for _ in range(1000):
        start = int(rng.integers(0, num_frames - length + 1))
        start -= start % 2 if even else 0
        if all(start + length + gap <= s or e + gap <= start for s, e in taken):
            taken.append((start, start + length))
            return tuple(range(start, start + length))
    raise ValueError(f"no room for an event of {length} frames in {num_frames} frames (gap {gap})")


def option_event(rng: np.random.Generator, frames: tuple[int, ...], colour: str, radius: tuple[float, float],
                 **kw) -> Event:
    """An evidence event in option colour `colour`, still, at a random place that keeps it inside the frame."""
    r = float(rng.uniform(*radius))
    centre = (float(rng.uniform(r, 1 - r)), float(rng.uniform(r, 1 - r)))
    return Event(frames, OPTION_RGB[colour], BACKGROUND_SHAPES[int(rng.integers(3))], centre, r, **kw)


SMALL_RADIUS = (9, 12.5)  # pixels: a small shape 18-25 px across, inside one 28 px token cell


def small_event(rng: np.random.Generator, frames: tuple[int, ...], colour: str) -> Event:
    """An evidence event in option colour `colour`: a still square or disc 18-25 px across, inside one
    visual token's 28 px cell (2-5% of the frame, one of its 16 tokens)."""
    cells = FRAME_SIDE // TOKEN_SIDE
    r = float(rng.uniform(*SMALL_RADIUS))
    slack = TOKEN_SIDE / 2 - r  # how far the centre may move from the cell's centre, the shape still inside
    centre = (rng.integers(0, cells, 2) + 0.5) * TOKEN_SIDE + rng.uniform(-slack, slack, 2)
    return Event(frames, OPTION_RGB[colour], ("square", "disc")[int(rng.integers(2))],
                 (float(centre[0] / FRAME_SIDE), float(centre[1] / FRAME_SIDE)), r / FRAME_SIDE)


def shape_mask(shape: str, centre: tuple[float, float], radius: float, side: int) -> np.ndarray:
    """(side, side) bool mask of a shape; centre and radius in pixels."""
    yy, xx = np.mgrid[0:side, 0:side]
    dy, dx = yy + 0.5 - centre[0], xx + 0.5 - centre[1]
    if shape == "square":
        mask = (np.abs(dy) <= radius) & (np.abs(dx) <= radius)
    elif shape == "disc":
        mask = dy**2 + dx**2 <= radius**2
    else:
        mask = np.abs(dy) + np.abs(dx) <= radius * 1.3
    return mask


def draw_event(frame: np.ndarray, q: TaskQuestion, index: int, t: int) -> None:
    """Draw event `index` of `q` into `frame` (side, side, 3) uint8, in place, as it is at frame `t`."""
    e = q.events[index]
    side = frame.shape[0]
    dt = t - e.frames[0]
    centre = ((e.centre[0] + e.velocity[0] * dt) * side, (e.centre[1] + e.velocity[1] * dt) * side)
    mask = shape_mask(e.shape, centre, e.radius * side, side)
    noise = np.random.default_rng((q.seed, index, t)).normal(0, 8, (int(mask.sum()), 3))
    frame[mask] = np.clip(np.asarray(e.rgb) + noise, 0, 255).astype(np.uint8)


def iter_frames(q: TaskQuestion, side: int = FRAME_SIDE, shown: set[int] | None = None,
                frames: list[int] | None = None) -> Iterator[np.ndarray]:
    """The question's frames (side, side, 3) uint8 in order (a generator: never the whole video in memory).

    `shown`: indices (into `q.events`) of the evidence events to draw, None for all of them; decoys are
    always drawn, so `shown=set()` is the same video without its evidence. `frames`: only these indices
    (ascending); the background of a frame depends on the frames before it, so they are still made.
    """
    rng = np.random.default_rng(q.seed + 7)
    wanted = None if frames is None else set(frames)
    by_frame: dict[int, list[int]] = {}
    for i, e in enumerate(q.events):
        if not e.evidence or shown is None or i in shown:
            for t in e.frames:
                by_frame.setdefault(t, []).append(i)
    for t in range(q.num_frames if frames is None else max(frames, default=-1) + 1):
        distractor = rng.random() < q.distractor_rate
        frame = render_frame(rng, None, BACKGROUND_SHAPES[int(rng.integers(3))], distractor, t, side)
        if wanted is not None and t not in wanted:
            continue
        # evidence last, on top: a decoy passing over it must not hide the answer
        for i in sorted(by_frame.get(t, ()), key=lambda i: q.events[i].evidence):
            draw_event(frame, q, i, t)
        yield frame


def write_video_file(q: TaskQuestion, path: str | Path, fps: float = VIDEO_FPS, side: int = FRAME_SIDE) -> Path:
    """Write the question's video as an mp4 through `video.write_video` (PyAV), unless it exists."""
    from ..video import write_video

    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, iter_frames(q, side), fps=fps)
    return path
