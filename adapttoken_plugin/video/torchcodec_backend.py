"""The torchcodec backend of `FrameReader`: PyTorch's FFmpeg decoder, on the CPU or on a CUDA device (NVDEC).

torchcodec is imported inside functions, so importing this module stays cheap. Its wheels do not bundle
FFmpeg: it loads the system's FFmpeg libraries (4 to 9) and, where none are found, imports but cannot
decode; `torchcodec_status` tells which (FrameReader's `auto` then picks PyAV, saying so once).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..errors import VideoReadError
from ._common import HALF_UP, error_cause, pyav_available
from .pyav_backend import PyAVBackend
from .sampling import VideoInfo

logger = logging.getLogger(__name__)
_cpu_noted = False  # "cannot decode on cuda" is logged once per process


def torchcodec_status() -> str | None:
    """None when torchcodec imports and has loaded FFmpeg libraries; otherwise one line saying why not."""
    try:
        import torchcodec
    except ImportError:
        return "torchcodec is not installed"
    except Exception as error:  # a broken install raises OSError or RuntimeError from its native part
        return f"torchcodec does not import ({error_cause(error)})"
    # torchcodec imports without FFmpeg (its image decoders do not need it); the video ops then are stubs
    if getattr(torchcodec, "ffmpeg_major_version", None) is None:
        return (f"torchcodec {torchcodec.__version__} cannot load FFmpeg libraries (none of versions 4-9 found "
                "on the library path)")
    return None


class TorchCodecBackend:
    """torchcodec's VideoDecoder (exact seek mode), frames resized inside FFmpeg's filter graph.

    Index t is the frame on screen t / fps seconds after the first frame, as in the PyAV backend: frames are
    asked for by time (`get_frames_played_at`) at (t + 0.49) / fps after the first frame's timestamp, the
    end of the window PyAV's rounding gives index t. On a constant frame rate that is the t-th frame. On a
    variable frame rate where two frames fall into one slot, this returns the later of the two (PyAV and
    decord the earlier); every other slot gets the same frame from all three backends.

    The frame count and rate come from the PyAV probe when PyAV imports (the same `VideoInfo` as the other
    backends, and a count checked against what decodes); without PyAV, from torchcodec's own scan.

    device: "cpu", or a CUDA device ("cuda", "cuda:1") to decode with NVDEC; frames still come back as a
    host uint8 array.
    """

    name = "torchcodec"

    def __init__(self, path: str, size: tuple[int, int] | None, device: str = "cpu"):
        from torchcodec.decoders import VideoDecoder

        self.path = path
        self.device = device
        self._size = size
        self._fallback: PyAVBackend | None = None
        self.fallback_reads = 0  # batches decoded by PyAV since torchcodec failed on one
        transforms = []
        if size is not None:
            from torchcodec.transforms import Resize

            transforms.append(Resize(size))
        # num_ffmpeg_threads=0: FFmpeg picks the thread count (torchcodec's default of 1 decodes long-GOP video
        # on one core); NHWC is the layout FFmpeg produces, so no transpose copy
        options = dict(seek_mode="exact", dimension_order="NHWC", num_ffmpeg_threads=0, transforms=transforms)
        try:
            try:
                self._decoder = VideoDecoder(path, device=device, **options)
            except Exception as error:
                if device == "cpu":
                    raise
                # no NVDEC for this codec or build, or a transform the CUDA path lacks: the CPU decodes instead
                _note_cpu_instead(device, error)
                self.device = "cpu"
                self._decoder = VideoDecoder(path, device="cpu", **options)
            meta = self._decoder.metadata
        except Exception as error:  # ValueError, RuntimeError from FFmpeg: "cannot use this file"
            raise VideoReadError(f"cannot read video {path!r} with torchcodec: {error_cause(error)}") from None
        if pyav_available():
            with PyAVBackend(path, None) as probe:
                self.info = probe.info
                self._start_s = probe.start_seconds
        else:
            count = meta.num_frames_from_content or meta.num_frames or 0
            fps = float(meta.average_fps or 0.0)
            if count < 1 or not fps > 0:
                raise VideoReadError(f"cannot read video {path!r} with torchcodec: {count} frames at {fps} fps")
            self.info = VideoInfo(path=path, num_frames=int(count), fps=fps, width=int(meta.width),
                                  height=int(meta.height))
            self._start_s = float(meta.begin_stream_seconds or 0.0)
        self._end_s = float(meta.end_stream_seconds) if meta.end_stream_seconds is not None else float("inf")

    def seconds_of(self, indices: np.ndarray) -> np.ndarray:
        """Stream time (s) asked of torchcodec for each index ((n,) int64 -> (n,) float64)."""
        seconds = self._start_s + (indices + (1.0 - HALF_UP)) / self.info.fps
        # the last frame is played until end_stream_seconds; a request at or after it is refused
        return np.minimum(seconds, np.nextafter(self._end_s, -np.inf))

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Frames at `indices` ((n,) int64, checked to be in range by FrameReader): uint8 (n, H, W, 3) RGB."""
        if self._fallback is not None:  # torchcodec failed on this file once: PyAV reads the rest
            return self._pyav_fallback().read(indices)
        wanted, inverse = np.unique(indices, return_inverse=True)
        try:
            batch = self._decoder.get_frames_played_at(self.seconds_of(wanted).tolist())
            frames = _to_numpy(batch.data)
        except Exception as error:
            if not pyav_available():
                raise VideoReadError(f"torchcodec failed to decode frames of {self.path!r}: "
                                     f"{error_cause(error)}") from None
            # e.g. a false end of stream when a batch crosses an interior keyframe (pytorch/torchcodec#1502):
            # PyAV decodes this batch and every later one
            return self._pyav_fallback().read(indices)
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
        """Drop the decoder and the PyAV fallback, if any."""
        self._decoder = None
        if self._fallback is not None:
            self._fallback.close()
            self._fallback = None


def _note_cpu_instead(device: str, error: BaseException) -> None:
    global _cpu_noted
    if not _cpu_noted:
        _cpu_noted = True
        logger.warning("adapttoken: torchcodec cannot decode on %s (%s); it decodes on the CPU", device,
                       error_cause(error))


def _to_numpy(data: Any) -> np.ndarray:
    # CUDA frames come back on the device; the frame cache and the processors take host arrays
    return np.ascontiguousarray(data.cpu().numpy(), dtype=np.uint8)
