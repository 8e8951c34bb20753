"""Which frames of a video a model sees: the file's metadata (`VideoInfo`) and `sample_frame_indices`.

Frame index t means the frame on screen t / fps seconds after the first frame of the video stream
(fps: the stream's average rate); see `adapttoken_plugin.video`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, EmptyVideoError


@dataclass(frozen=True)
class VideoInfo:
    """What a `FrameReader` knows about a video file.

    path: the file.
    num_frames: frames that can be read, indices 0..num_frames-1: up to the last frame that actually
        decodes, which is fewer than the container claims when its end is broken or its count is wrong.
    fps: native (average) frame rate, frames per second of video time.
    width, height: native frame size in pixels, before any resize.
    """

    path: str
    num_frames: int
    fps: float
    width: int
    height: int

    @property
    def duration(self) -> float:
        """Length of the video in seconds (num_frames / fps; 0.0 when fps is unknown)."""
        return self.num_frames / self.fps if self.fps > 0 else 0.0


def sample_frame_indices(info: VideoInfo, fps: float, max_frames: int, multiple_of: int = 1) -> np.ndarray:
    """Indices of the frames to feed a model, shape (n,), int64, strictly increasing, in [0, info.num_frames).

    Frames are taken at `fps` frames per second of video time (the frame on screen at times 0, 1/fps,
    2/fps, ...; every frame when `fps` >= the native rate). When that gives more than `max_frames`
    frames, `max_frames` frames are spread evenly over the whole video instead, first and last frame
    included. The count is then rounded down to a multiple of `multiple_of` (models that encode frame
    pairs need 2); on the fps grid this drops the last few samples so the spacing stays exactly 1/fps.

    Raises ConfigError for fps <= 0, max_frames < 1 or multiple_of < 1, and EmptyVideoError when no
    frame is left.
    """
    if not fps > 0:
        raise ConfigError(f"fps={fps!r} is out of range: expected a number > 0")
    if max_frames < 1:
        raise ConfigError(f"max_frames={max_frames!r} is out of range: expected an integer >= 1")
    if multiple_of < 1:
        raise ConfigError(f"multiple_of={multiple_of!r} is out of range: expected an integer >= 1")
    total = int(info.num_frames)
    indices = np.zeros(0, dtype=np.int64)
    if total > 0 and info.fps > 0:
        step = info.fps / fps  # native frames between two samples
        if step <= 1.0:
            on_grid = total
        else:
            # the epsilon keeps an exact multiple (e.g. 40 frames, step 2.0) from gaining a sample
            on_grid = min(total, math.ceil(total / step - 1e-9))
        if on_grid <= max_frames:
            count = on_grid // multiple_of * multiple_of
            if step <= 1.0:
                indices = np.arange(count, dtype=np.int64)
            else:
                indices = np.floor(np.arange(count) * step + 1e-9).astype(np.int64)
        else:
            count = max_frames // multiple_of * multiple_of
            if count == 1:
                indices = np.zeros(1, dtype=np.int64)
            elif count > 1:
                # floor(x + 0.5), not np.round: round-half-to-even can map two neighbours to one frame
                indices = np.floor(np.linspace(0, total - 1, count) + 0.5).astype(np.int64)
    if indices.size == 0:
        raise EmptyVideoError(
            f"sampling {info.path!r} gave no frames: the video has {total} frames at {info.fps:g} fps "
            f"({info.duration:.3f} s); asked fps={fps:g}, max_frames={max_frames}, multiple_of={multiple_of}"
        )
    return indices
