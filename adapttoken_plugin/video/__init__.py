"""Lazy frame access for long videos: read only the sampled frames, resized while decoding.

An hour-long video sampled at up to 10,000 frames never fits in memory at native size (4,096 native
1080p frames are ~25 GB), so a `FrameReader` decodes just the frames a caller asks for, at the size
the model wants, and returns nothing else. torchcodec, PyAV and decord are imported inside functions so
that importing this package stays cheap.

Frame index t means the frame on screen t / fps seconds after the first frame of the video stream
(fps: the stream's average rate). On a constant-frame-rate file that is simply the t-th frame in
presentation order; on a variable-frame-rate file the backends map indices to frames the same way (see
`TorchCodecBackend` for the one exception).

Modules:
    sampling            VideoInfo (what a reader knows about a file), sample_frame_indices
    reader              FrameReader (the backend choice and index checks), BACKENDS
    torchcodec_backend  TorchCodecBackend: PyTorch's FFmpeg decoder (CPU or CUDA), PyAV taking over on failure
    pyav_backend        PyAVBackend: forward decoding with keyframe seeks, the frame-count probe;
                        keyframe_interval (from the first packets)
    decord_backend      DecordBackend: decord, its count checked by PyAV, PyAV taking over on failure
    writer              write_video (test clips, needle videos)
    identity            video_key_of_file / video_key_of_tensor (per-question draws, the pipeline's caches)
"""

from __future__ import annotations

from .identity import video_key_of_file, video_key_of_tensor
from .reader import BACKENDS, FrameReader
from .sampling import VideoInfo, sample_frame_indices
from .writer import write_video

__all__ = ["BACKENDS", "FrameReader", "VideoInfo", "sample_frame_indices", "video_key_of_file", "video_key_of_tensor",
           "write_video"]
