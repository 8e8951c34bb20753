"""Synthetic long-video needle questions, deterministic by seed.

A video is mostly distractor frames (colour-noise textures, drifting grey shapes, and large shapes in
colours that are *not* among the options, which resemble the needle), plus one short needle event: a
few consecutive frames with a large shape in one of the option colours. The question asks for the
needle's colour, with the four options always in the same order (A red, B green, C blue, D yellow).

    q = make_question(seed=3, num_frames=1024)
    write_video_file(q, "q3.mp4")                # real mp4 through PyAV: the decoding path users hit
    q.answer_letter, q.needle_frames
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

OPTIONS = ("red", "green", "blue", "yellow")
LETTERS = ("A", "B", "C", "D")
QUESTION = "What colour was the large shape that appeared briefly?"
OPTION_RGB = {"red": (235, 20, 20), "green": (20, 210, 20), "blue": (30, 50, 245), "yellow": (240, 230, 20)}
# colours of needle-like distractor shapes: never an answer
DISTRACTOR_RGB = ((200, 40, 200), (40, 210, 210), (240, 140, 30), (235, 235, 235))
FRAME_SIDE = 56
VIDEO_FPS = 4.0
#: version of what `iter_frames` draws, recorded beside each written video: bump it when the frames change
VIDEO_FORMAT = 1


@dataclass(frozen=True)
class NeedleQuestion:
    """One question. `needle_frames` are frame indices of the needle event (consecutive)."""

    seed: int
    num_frames: int
    needle_start: int
    needle_length: int
    colour: str
    shape: str
    distractor_rate: float

    @property
    def needle_frames(self) -> list[int]:
        return list(range(self.needle_start, self.needle_start + self.needle_length))

    @property
    def answer_letter(self) -> str:
        return LETTERS[OPTIONS.index(self.colour)]

    @property
    def question(self) -> str:
        return QUESTION

    @property
    def options(self) -> list[str]:
        return list(OPTIONS)

    def to_dict(self) -> dict:
        return {**asdict(self), "answer": self.answer_letter, "needle_frames": self.needle_frames}


def make_question(seed: int, num_frames: int, needle_length: int | None = None,
                  distractor_rate: float = 0.05) -> NeedleQuestion:
    """A question with the needle at a seeded position (anywhere, whole event inside the video)."""
    rng = np.random.default_rng(seed)
    length = needle_length or int(rng.integers(4, 9))
    length = min(length, num_frames)
    return NeedleQuestion(
        seed=seed, num_frames=num_frames, needle_start=int(rng.integers(0, num_frames - length + 1)),
        needle_length=length, colour=OPTIONS[int(rng.integers(0, 4))],
        shape=("square", "disc", "diamond")[int(rng.integers(0, 3))], distractor_rate=distractor_rate,
    )


def question_set(count: int, lengths: tuple[int, ...], seed: int = 0) -> list[NeedleQuestion]:
    """`count` questions spread evenly over the video lengths (frames), fixed by `seed`."""
    return [make_question(seed * 100_003 + i, lengths[i % len(lengths)]) for i in range(count)]


def _shape_mask(shape: str, centre: tuple[float, float], radius: float, side: int) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side]
    dy, dx = yy - centre[0], xx - centre[1]
    if shape == "square":
        return (np.abs(dy) <= radius) & (np.abs(dx) <= radius)
    if shape == "disc":
        return dy**2 + dx**2 <= radius**2
    return np.abs(dy) + np.abs(dx) <= radius * 1.3  # diamond


def render_frame(rng: np.random.Generator, needle_rgb: tuple[int, int, int] | None, shape: str,
                 distractor: bool, t: int, side: int = FRAME_SIDE) -> np.ndarray:
    """One (side, side, 3) uint8 frame: dim tinted noise, a drifting grey shape, maybe a large coloured shape."""
    base = rng.integers(20, 110) + rng.integers(-15, 16, (1, 1, 3))
    frame = np.clip(base + rng.normal(0, 20, (side, side, 3)), 0, 255)
    grey = _shape_mask(("square", "disc", "diamond")[t % 3], ((t * 2) % side, (t * 3) % side), side / 8, side)
    frame[grey] = rng.integers(90, 170)
    frame = frame.astype(np.uint8)
    if needle_rgb is not None or distractor:
        colour = needle_rgb if needle_rgb is not None else DISTRACTOR_RGB[int(rng.integers(0, len(DISTRACTOR_RGB)))]
        frame = overlay_shape(frame, rng, colour, shape)
    return frame


def overlay_shape(frame: np.ndarray, rng: np.random.Generator, rgb: tuple[int, int, int], shape: str) -> np.ndarray:
    """A copy of `frame` with a large shape (a quarter to a third of the side in radius) in colour `rgb`."""
    side = frame.shape[0]
    radius = side * rng.uniform(0.25, 0.36)
    centre = rng.uniform(radius, side - radius, 2)
    mask = _shape_mask(shape, tuple(centre), radius, side)
    out = frame.astype(float)
    out[mask] = np.asarray(rgb) + rng.normal(0, 8, (int(mask.sum()), 3))
    return np.clip(out, 0, 255).astype(np.uint8)


def iter_frames(q: NeedleQuestion, side: int = FRAME_SIDE) -> Iterator[np.ndarray]:
    """The question's frames in order (a generator: never the whole video in memory)."""
    rng = np.random.default_rng(q.seed + 7)
    needle = set(q.needle_frames)
    shapes = ("square", "disc", "diamond")
    for t in range(q.num_frames):
        is_needle = t in needle
        distractor = (not is_needle) and rng.random() < q.distractor_rate
        shape = q.shape if is_needle else shapes[int(rng.integers(0, 3))]
        yield render_frame(rng, OPTION_RGB[q.colour] if is_needle else None, shape, distractor, t, side)


def write_video_file(q: NeedleQuestion, path: str | Path, fps: float = VIDEO_FPS,
                     on_frame: Callable[[int, int], None] | None = None) -> Path:
    """Write the question's video as an mp4 (PyAV), unless a complete one of this question is there already.

    Beside the video, `<name>.json` records what it holds (the question, fps, frame size, format version) and
    the file's size and sha256. A video is reused only when that record matches this question and the file; any
    other file at `path` (a short or unindexed one from an interrupted write of an older version, another
    question's, a changed frame generator) is written again. The write itself is atomic (`write_video`).
    `on_frame(done, total)` is called after each frame written (progress).
    """
    from .video import write_video

    path = Path(path)
    stamp = path.with_name(path.name + ".json")
    expected = {"question": q.to_dict(), "fps": fps, "frame_side": FRAME_SIDE, "format": VIDEO_FORMAT}
    if _holds(path, stamp, expected):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)  # from here until the new record is written, the video is not trusted
    frames = iter_frames(q)
    if on_frame is not None:
        frames = _counted(frames, q.num_frames, on_frame)
    write_video(path, frames, fps=fps)
    record = {"video": expected, "bytes": path.stat().st_size, "sha256": _file_sha256(path)}
    partial = stamp.with_name(f".{stamp.name}.partial")
    partial.write_text(json.dumps(record, indent=1))
    os.replace(partial, stamp)
    return path


def _holds(path: Path, stamp: Path, expected: dict) -> bool:
    """Whether `path` is the complete video `expected` describes, by the record beside it."""
    if not path.is_file() or not stamp.is_file():
        return False
    try:
        record = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(record, dict) and record.get("video") == expected
            and record.get("bytes") == path.stat().st_size and record.get("sha256") == _file_sha256(path))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _counted(frames: Iterator[np.ndarray], total: int, on_frame: Callable[[int, int], None]) -> Iterator[np.ndarray]:
    for done, frame in enumerate(frames, 1):
        yield frame
        on_frame(done, total)
