"""The decord backend of `FrameReader`: decord decodes, PyAV checks the frame count and takes over on failure.

decord is imported inside functions, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import VideoReadError
from ..heap import release_free_heap
from ._common import HALF_UP, error_cause, pyav_available
from .pyav_backend import PyAVBackend
from .sampling import VideoInfo


class DecordBackend:
    """decord.VideoReader with the frame count checked by PyAV (decord trusts the container's count).

    decord numbers frames by position; indices here are time slots as in the PyAV backend (index t = the
    frame on screen at t / fps), which is the same thing at a constant frame rate. For a variable frame rate
    the slots come from decord's own frame timestamps, so both backends return the same frame for an index.
    """

    name = "decord"

    def __init__(self, path: str, size: tuple[int, int] | None):
        import decord

        self.path = path
        self._size = size
        self._fallback: PyAVBackend | None = None
        self.fallback_reads = 0  # batches decoded by PyAV since decord failed on one
        height, width = size if size is not None else (-1, -1)
        try:
            # width/height here make decord scale inside its decode graph, so full-size frames never exist
            self._reader = decord.VideoReader(path, ctx=decord.cpu(0), width=width, height=height)
            reported = len(self._reader)
            fps = float(self._reader.get_avg_fps())
        except Exception as error:  # DECORDError, RuntimeError, AssertionError: all mean "cannot use this file"
            raise VideoReadError(f"cannot read video {path!r} with decord: {error_cause(error)}") from None
        if pyav_available():
            with PyAVBackend(path, None) as probe:
                checked = probe.info
            native = (checked.height, checked.width)
            fps = fps if fps > 0 else checked.fps
        else:
            checked = None
            native = self._native_size(decord, path, size)
        if reported < 1 or not fps > 0:
            raise VideoReadError(f"cannot read video {path!r} with decord: {reported} frames at {fps} fps")
        self._slots = self._time_slots(reported, fps)
        slot_count = int(self._slots[-1]) + 1 if self._slots is not None else reported
        # without PyAV the count stays unverified: decord cannot test decodability without risking the #373 hang
        num_frames = min(slot_count, checked.num_frames) if checked is not None else slot_count
        self.info = VideoInfo(path=path, num_frames=num_frames, fps=fps, width=native[1], height=native[0])

    def _time_slots(self, count: int, fps: float) -> np.ndarray | None:
        """Time slot of each decord frame position, or None when slot == position (constant frame rate)."""
        try:
            # decord's timestamp table is built when the file is opened: no decoding here
            seconds = np.asarray(self._reader.get_frame_timestamp(np.arange(count))[:, 0], dtype=np.float64)
        except Exception:
            return None
        slots = np.maximum.accumulate(np.floor((seconds - seconds[0]) * fps + HALF_UP).astype(np.int64))
        if slots[-1] == count - 1 and (np.diff(slots) == 1).all():
            return None
        return slots

    def _positions(self, indices: np.ndarray) -> np.ndarray:
        if self._slots is None:
            return indices
        # the first frame in slot t, else the last frame before it (what the PyAV backend returns)
        first = np.searchsorted(self._slots, indices, side="left")
        inside = first < self._slots.size
        exact = inside & (self._slots[np.minimum(first, self._slots.size - 1)] == indices)
        return np.where(exact, first, first - 1)

    def _native_size(self, decord: Any, path: str, size: tuple[int, int] | None) -> tuple[int, int]:
        try:
            reader = self._reader if size is None else decord.VideoReader(path, ctx=decord.cpu(0))
            shape = _to_numpy(reader[0]).shape
            reader.seek(0)
        except Exception as error:
            raise VideoReadError(f"cannot decode the first frame of {path!r} with decord: "
                                 f"{error_cause(error)}") from None
        return int(shape[0]), int(shape[1])

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Frames at `indices` ((n,) int64, checked to be in range by FrameReader): uint8 (n, H, W, 3) RGB."""
        slots = indices
        if self._fallback is not None:  # decord failed on this file once: PyAV reads the rest
            return self._pyav_fallback().read(slots)
        indices = self._positions(indices)
        wanted, inverse = np.unique(indices, return_inverse=True)
        try:
            # no vr.seek(0) after the batch (the dmlc/decord#197 memory workaround): it made reading 1,024
            # frames in groups of 8 2.7x slower, each group decoding from a keyframe again, for no RSS gain at 320x240
            frames = _to_numpy(self._reader.get_batch(wanted.tolist()))
        except Exception as error:
            if not pyav_available():
                raise VideoReadError(f"decord failed to decode frames of {self.path!r}: {error_cause(error)}") from None
            # decord's threaded decoder reads packets ahead of the frames asked for, so next to a broken
            # stretch it can fail (at random) on frames that do decode, and it fails to scale to some small
            # sizes: PyAV decodes this batch and every later one instead
            return self._pyav_fallback().read(slots)
        if wanted.size == indices.size and np.array_equal(wanted, indices):
            return frames
        return frames[inverse.reshape(-1)]

    def _pyav_fallback(self) -> PyAVBackend:
        if self._fallback is None:
            self._fallback = PyAVBackend(self.path, self._size)
            self.fallback_reads = 0
        self.fallback_reads += 1
        return self._fallback

    def close(self) -> None:
        """Drop the decord reader and the PyAV fallback, if any, and return decord's freed heap to the OS."""
        had_reader, self._reader = self._reader is not None, None
        if self._fallback is not None:
            self._fallback.close()
            self._fallback = None
        if had_reader:
            release_free_heap()  # its threads' arenas keep what they freed


def _to_numpy(batch: Any) -> np.ndarray:
    # decord.bridge may be set to torch or another framework by the caller's code
    array = batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)
    return np.ascontiguousarray(array, dtype=np.uint8)
