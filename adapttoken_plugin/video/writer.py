"""`write_video`: RGB frames to a video file with PyAV (test clips, needle videos, benchmarks)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import ConfigError


def write_video(
    path: str | os.PathLike[str], frames: Iterable[np.ndarray] | np.ndarray, fps: float = 8.0, codec: str = "libx264"
) -> None:
    """Write RGB uint8 frames, each (H, W, 3) with even H and W, to a video file (mp4 by its name) with PyAV.

    Frames are encoded one at a time, so a generator never has to fit in memory. Encoding is near
    lossless (x264 crf 10) so a frame's colours survive, with a keyframe every second so readers can seek.
    The file appears at `path` complete or not at all: it is written under a temporary name in the same
    folder and renamed over `path` once finished (an interrupted write, even a killed process, never leaves a
    short or unindexed video there). Raises ValueError for a frame of another shape or dtype, or no frames.
    """
    try:
        import av
    except ImportError:
        raise ConfigError("writing a video needs PyAV, which does not import: "
                          "pip install 'adapttoken[video]'") from None

    if not fps > 0:
        raise ValueError(f"fps={fps!r} must be > 0")
    rate = Fraction(fps).limit_denominator(1001)  # 29.97 -> 2997/100, 8.0 -> 8
    final = os.fspath(path)
    head, name = os.path.split(final)
    stem, suffix = os.path.splitext(name)
    # same folder (the rename stays on one file system), same suffix (PyAV picks the container by it)
    partial = os.path.join(head, f".{stem}.{uuid.uuid4().hex[:12]}.partial{suffix}")
    try:
        _encode(av, partial, final, frames, fps, rate, codec)
        with open(partial, "rb") as f:  # on disk before the rename makes it visible as complete
            os.fsync(f.fileno())
        os.replace(partial, final)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise


def _encode(av: Any, path: str, final: str, frames: Iterable[np.ndarray] | np.ndarray, fps: float, rate: Fraction,
            codec: str) -> None:
    """Encode `frames` into a new file at `path`, the temporary name of `final` (see `write_video`)."""
    container = av.open(path, mode="w")
    try:
        stream: Any = None
        shape = None
        for i, frame in enumerate(frames):
            frame = np.asarray(frame)
            if stream is None:
                if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] % 2 or frame.shape[1] % 2:
                    raise ValueError(f"frame 0 has shape {frame.shape}: expected (H, W, 3) with even H and W "
                                     "(yuv420p halves both)")
                shape = frame.shape
                stream = container.add_stream(codec, rate=rate)
                stream.height, stream.width = shape[0], shape[1]
                stream.pix_fmt = "yuv420p"
                stream.codec_context.gop_size = max(1, round(fps))
                if codec in ("libx264", "libx265"):
                    stream.options = {"crf": "10"}
                else:  # other encoders have no crf; a generous bit rate keeps colours close
                    stream.bit_rate = max(1_000_000, int(shape[0] * shape[1] * 3 * float(rate)))
            if frame.shape != shape or frame.dtype != np.uint8:
                raise ValueError(f"frame {i} is {frame.dtype} {frame.shape}; expected uint8 {shape}")
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        if stream is None:
            raise ValueError(f"no frames to write to {final!r}")
        for packet in stream.encode():  # flush the encoder's delayed (B-)frames
            container.mux(packet)
    finally:
        container.close()
