"""`FrameReader`: the chosen frames of one video file, resized while decoding, by torchcodec, PyAV or decord.

The backend is chosen here ("auto": torchcodec when it can load FFmpeg and opens the file, else PyAV;
decord only when asked for by name); the backends themselves live in `torchcodec_backend`,
`pyav_backend` and `decord_backend`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from ..config import VIDEO_BACKENDS
from ..errors import ConfigError, VideoReadError
from ._common import decord_available, pyav_available
from .decord_backend import DecordBackend
from .pyav_backend import PyAVBackend
from .sampling import VideoInfo
from .torchcodec_backend import TorchCodecBackend, torchcodec_status

BACKENDS = VIDEO_BACKENDS

logger = logging.getLogger(__name__)
_fallback_noted = False  # the "torchcodec cannot load, decoding with PyAV" line is logged once per process


def _note_auto_fallback(reason: str) -> None:
    global _fallback_noted
    if not _fallback_noted:
        _fallback_noted = True
        logger.warning("adapttoken: %s; video decoding uses PyAV (backend='auto')", reason)


def describe_backend(backend: str) -> str:
    """The decoder `backend` stands for here, with its version ("torchcodec 0.17.0"): `auto` resolved as FrameReader
    resolves it for a file both can open. For cache keys: decoders resize differently, and what `auto` stands
    for has changed (it was decord where decord imported)."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r} is not known: expected one of {BACKENDS}")
    name = backend if backend != "auto" else ("torchcodec" if torchcodec_status() is None else "pyav")
    return f"{name} {backend_version(name)}"


def backend_version(name: str) -> str:
    """Version string of an installed backend ("torchcodec", "pyav" or "decord")."""
    import importlib.metadata

    package = {"torchcodec": "torchcodec", "pyav": "av", "decord": "decord"}[name]
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:  # imported from a source tree: ask the module
        module = __import__(package)
        return str(getattr(module, "__version__", "unknown"))


class FrameReader:
    """Reads chosen frames of one video file, resized while decoding.

    FrameReader(path, backend="auto", size=None, device="cpu")
        backend: "torchcodec", "pyav", "decord", or "auto" (torchcodec when it can load FFmpeg and opens the
            file, else PyAV; when torchcodec is installed but cannot load FFmpeg, one line is logged once).
            decord (unmaintained since 2021) is used only when named, for parity with numbers made with it.
            With PyAV installed, once torchcodec or decord fails to decode a batch, PyAV decodes it and the
            rest (decord's threaded decoder can fail at random next to a broken stretch of the file and fails
            to scale to some small sizes; torchcodec can report a false end of stream).
        size: (height, width) in pixels to resize every frame to during decoding; None keeps the native size.
        device: where torchcodec decodes ("cpu", or "cuda[:N]" for NVDEC); the other backends decode on the CPU.
    .info -> VideoInfo (native size, frame count checked against what decodes)
    .backend, .backend_version -> the backend in use and its version ("torchcodec", "0.17.0")
    .device -> where it decodes ("cpu" unless torchcodec decodes on a CUDA device)
    .read(indices) -> uint8 array (len(indices), H, W, 3), RGB, frames in the order given
    .close(); also a context manager.

    Opening decodes the first frame and the last second of the video (to verify the frame count), so it
    costs about two keyframe intervals of decoding. Raises VideoReadError for a missing, unreadable or
    frameless file.
    """

    def __init__(self, path: str | os.PathLike[str], backend: str = "auto", size: tuple[int, int] | None = None,
                 device: str = "cpu"):
        if backend not in BACKENDS:
            raise ConfigError(f"backend={backend!r} is not known: expected one of {BACKENDS}")
        if size is not None:
            if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
                raise ConfigError(f"size={size!r} is out of range: expected (height, width) of positive integers")
            size = (int(size[0]), int(size[1]))
        self.path = os.fspath(path)
        self.size = size
        if not os.path.exists(self.path):
            raise VideoReadError(f"cannot read video {self.path!r}: no such file")
        if not os.path.isfile(self.path):
            raise VideoReadError(f"cannot read video {self.path!r}: not a regular file")
        self._impl: TorchCodecBackend | DecordBackend | PyAVBackend | None = None
        if backend == "pyav" and not pyav_available():
            raise ConfigError("backend='pyav' needs PyAV, which does not import: pip install 'adapttoken[video]'")
        if backend == "pyav":
            self._impl = PyAVBackend(self.path, size)
        elif backend == "decord":
            if not decord_available():
                raise ConfigError("backend='decord' was asked but decord does not import: pip install decord (x86-64 "
                                  "Linux and Windows wheels), or use backend 'pyav' or 'auto'")
            self._impl = DecordBackend(self.path, size)
        elif backend == "torchcodec":
            if (reason := torchcodec_status()) is not None:
                raise ConfigError(f"backend='torchcodec' was asked but {reason}; use 'pyav' or 'auto'")
            self._impl = TorchCodecBackend(self.path, size, device)
        elif (reason := torchcodec_status()) is None:
            try:
                self._impl = TorchCodecBackend(self.path, size, device)
            except VideoReadError as torchcodec_error:
                # FFmpeg refuses some files PyAV's own FFmpeg reads (other build, other codecs)
                try:
                    self._impl = PyAVBackend(self.path, size)
                except VideoReadError as pyav_error:
                    raise VideoReadError(f"{pyav_error}; torchcodec also failed: {torchcodec_error}") from pyav_error
        else:
            if reason != "torchcodec is not installed":  # installed but unusable: worth one line
                _note_auto_fallback(reason)
            self._impl = PyAVBackend(self.path, size)
        self.backend = self._impl.name
        self.backend_version = backend_version(self.backend)
        self.device = getattr(self._impl, "device", "cpu")
        self._info = self._impl.info

    @property
    def info(self) -> VideoInfo:
        """Native frame rate, size and readable frame count of the file (still available after close)."""
        return self._info

    def read(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames at `indices` (any order, repeats allowed) as uint8 RGB, shape (len(indices), H, W, 3).

        H, W is `size` when given, else the native height and width. Only these frames are held in memory.
        Raises VideoReadError for an index outside [0, info.num_frames) or a frame that fails to decode.
        """
        impl = self._open()
        idx = np.asarray(indices)
        if idx.ndim != 1:
            raise TypeError(f"frame indices must be a 1-D sequence of integers, got shape {idx.shape}")
        if idx.size and idx.dtype.kind not in "iu":
            raise TypeError(f"frame indices must be integers, got an array of {idx.dtype}")
        idx = idx.astype(np.int64, copy=False)
        height, width = self.size if self.size is not None else (impl.info.height, impl.info.width)
        if idx.size == 0:
            return np.zeros((0, height, width, 3), dtype=np.uint8)
        # checked before any decoder sees it: decord can hang forever inside native code, holding the
        # GIL, when asked for frames past the ones that decode (dmlc/decord#373)
        bad = idx[(idx < 0) | (idx >= impl.info.num_frames)]
        if bad.size:
            raise VideoReadError(
                f"cannot read frame {int(bad[0])} of {self.path!r}: it has {impl.info.num_frames} readable frames "
                f"(indices 0..{impl.info.num_frames - 1})"
            )
        frames = impl.read(idx)
        if frames.shape != (idx.size, height, width, 3):  # a backend that ignored the size would be a bug
            raise VideoReadError(f"{impl.name} returned frames of shape {frames.shape} for {self.path!r}; "
                                 f"expected {(idx.size, height, width, 3)}")
        return frames

    def close(self) -> None:
        """Release the decoder and the file. Safe to call twice."""
        if self._impl is not None:
            self._impl.close()
            self._impl = None

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> TorchCodecBackend | DecordBackend | PyAVBackend:
        if self._impl is None:
            raise VideoReadError(f"the FrameReader of {self.path!r} is closed")
        return self._impl
