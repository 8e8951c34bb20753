"""Frame reading (torchcodec, PyAV and decord), frame sampling, and the errors of adapttoken_plugin.video.

Test videos encode each frame's index in its colour: red = (i % 16) * 16 and green = (i // 16) * 16 over
a whole frame, so a step of 16 grey levels survives H.264 and the YUV round trip, and resizing a
solid frame keeps its colour.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import av
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adapttoken_plugin.errors import AdaptTokenError, ConfigError, EmptyVideoError, VideoReadError
from adapttoken_plugin.video import FrameReader, VideoInfo, sample_frame_indices, write_video
from adapttoken_plugin.video.torchcodec_backend import torchcodec_status

H, W = 48, 64
NUM_FRAMES = 40
FPS = 8.0


def index_frame(i: int, height: int = H, width: int = W) -> np.ndarray:
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[...] = ((i % 16) * 16, (i // 16) * 16, 128)
    return frame


def decode_index(frame: np.ndarray) -> int:
    red, green = frame[..., 0].mean(), frame[..., 1].mean()
    return int(round(red / 16)) + 16 * int(round(green / 16))


def decode_indices(frames: np.ndarray) -> list[int]:
    return [decode_index(f) for f in frames]


def backend_params():
    return [
        "pyav",
        pytest.param("torchcodec", marks=pytest.mark.skipif(torchcodec_status() is not None,
                                                            reason=str(torchcodec_status()))),
        pytest.param("decord", marks=pytest.mark.skipif(not _has_decord(), reason="decord does not import")),
    ]


needs_torchcodec = pytest.mark.skipif(torchcodec_status() is not None, reason=str(torchcodec_status()))


def _has_decord() -> bool:
    try:
        import decord  # noqa: F401
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("video") / "index.mp4"
    write_video(path, (index_frame(i) for i in range(NUM_FRAMES)), fps=FPS)  # a generator: streamed
    return str(path)


@pytest.fixture(params=backend_params())
def backend(request) -> str:
    return request.param


# --------------------------------------------------------------------------------------------------
# reading


@pytest.mark.parametrize("indices", [
    [0, NUM_FRAMES - 1],
    list(range(NUM_FRAMES)),
    [0, 3, 17, 18, 25, 31, NUM_FRAMES - 1],
    [NUM_FRAMES - 1],
    [21],
    [1, 2, 9, 10, 11, 39],
])
def test_read_returns_exactly_the_requested_frames(video, backend, indices):
    with FrameReader(video, backend=backend) as reader:
        frames = reader.read(indices)
    assert frames.dtype == np.uint8
    assert frames.shape == (len(indices), H, W, 3)
    assert decode_indices(frames) == indices


def test_read_keeps_the_callers_order_and_repeats(video, backend):
    indices = [30, 2, 2, 39, 0, 17, 30]
    with FrameReader(video, backend=backend) as reader:
        assert decode_indices(reader.read(indices)) == indices
        assert decode_indices(reader.read(np.array(indices[::-1], dtype=np.int32))) == indices[::-1]


def test_successive_reads_go_back_and_forth(video, backend):
    # the PyAV reader keeps its decoder position between calls; going back or far ahead must seek
    calls = [[5, 6, 7], [8, 9], [36, 37], [1, 3], [24], [24, 25], [0], [39]]
    with FrameReader(video, backend=backend) as reader:
        got = [decode_indices(reader.read(call)) for call in calls]
    assert got == calls


def test_empty_read(video, backend):
    with FrameReader(video, backend=backend, size=(24, 32)) as reader:
        assert reader.read([]).shape == (0, 24, 32, 3)


@pytest.mark.parametrize("size", [(24, 32), (30, 40), (56, 84)])
def test_resize_at_decode(video, backend, size):
    indices = [0, 13, 39]
    with FrameReader(video, backend=backend, size=size) as reader:
        assert (reader.info.height, reader.info.width) == (H, W)  # info stays native
        frames = reader.read(indices)
    assert frames.shape == (3, *size, 3)
    assert decode_indices(frames) == indices


@pytest.mark.parametrize("other", [b for b in backend_params() if b != "pyav"])
def test_backends_return_the_same_pixels_at_native_size(video, other):
    indices = [0, 7, 8, 19, 33, 39]
    with FrameReader(video, backend=other) as o, FrameReader(video, backend="pyav") as p:
        assert np.array_equal(o.read(indices), p.read(indices))


@needs_torchcodec
def test_torchcodec_resizes_with_antialiasing(tmp_path):
    """torchcodec's Resize always anti-aliases, PyAV's and decord's bilinear scaler does not: resized frames
    differ (documented in docs/benchmarks.md); on smooth content by a few grey levels."""
    path = tmp_path / "ramp.mp4"
    ramp = np.broadcast_to(np.linspace(0, 255, 96, dtype=np.float64)[None, :, None], (64, 96, 3))
    write_video(path, [ramp.astype(np.uint8)] * 4, fps=4.0)
    with FrameReader(path, backend="torchcodec", size=(32, 48)) as t, \
            FrameReader(path, backend="pyav", size=(32, 48)) as p:
        a, b = t.read([1]).astype(int), p.read([1]).astype(int)
    assert np.abs(a - b).mean() < 3


def test_a_batch_decord_fails_on_is_decoded_by_pyav(video):
    pytest.importorskip("decord")
    indices = [3, 8, 21]
    with FrameReader(video, backend="decord", size=(24, 32)) as reader, \
            FrameReader(video, backend="pyav", size=(24, 32)) as pyav:
        impl = reader._impl

        class Failing:
            def get_batch(self, positions):
                raise RuntimeError("Thread worker: Error sending packet.")

        impl._reader = Failing()
        frames = reader.read(indices)
        assert impl.fallback_reads == 1
        assert np.array_equal(frames, pyav.read(indices))
        assert np.array_equal(reader.read([5]), pyav.read([5])) and impl.fallback_reads == 2  # PyAV from now on
    assert decode_indices(frames) == indices


def test_info_of_a_known_file(video, backend):
    with FrameReader(video, backend=backend) as reader:
        info = reader.info
        assert reader.backend == backend
    assert info == VideoInfo(path=video, num_frames=NUM_FRAMES, fps=FPS, width=W, height=H)
    assert info.duration == pytest.approx(NUM_FRAMES / FPS)


@pytest.mark.parametrize("other", [b for b in backend_params() if b != "pyav"])
def test_backends_agree_on_info(tmp_path, other):
    path = tmp_path / "odd_rate.mp4"
    write_video(path, np.stack([index_frame(i, 36, 52) for i in range(23)]), fps=12.5)  # an array, not a generator
    with FrameReader(path, backend=other) as d, FrameReader(path, backend="pyav", size=(20, 20)) as p:
        assert (d.info.num_frames, d.info.fps, d.info.width, d.info.height) == (23, 12.5, 52, 36)
        assert d.info == p.info
        assert decode_indices(d.read([0, 11, 22])) == decode_indices(p.read([0, 11, 22])) == [0, 11, 22]


def test_variable_frame_rate_index_is_the_frame_on_screen(tmp_path):
    # index t means the frame shown at t / fps; decord numbers frames by position, so without the
    # timestamp mapping the two backends would disagree after the first long frame
    path = tmp_path / "vfr.mkv"
    steps_ms = [100, 300, 100, 200, 100, 100, 300, 200, 100, 100] * 3
    pts_ms = np.concatenate([[0], np.cumsum(steps_ms)[:-1]]).tolist()
    container = av.open(str(path), mode="w")
    stream = container.add_stream("libx264", rate=10)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    stream.codec_context.time_base = Fraction(1, 1000)
    stream.options = {"crf": "10", "g": "5"}
    for i, pts in enumerate(pts_ms):
        frame = av.VideoFrame.from_ndarray(index_frame(i), format="rgb24")
        frame.pts, frame.time_base = pts, Fraction(1, 1000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()

    infos, frames = [], []
    names = ["pyav", *(["decord"] if _has_decord() else []), *(["torchcodec"] if torchcodec_status() is None else [])]
    for name in names:
        with FrameReader(path, backend=name) as reader:
            infos.append(reader.info)
            frames.append(decode_indices(reader.read(range(reader.info.num_frames))))
    info = infos[0]
    assert all(other == info for other in infos)
    assert info.num_frames == round(pts_ms[-1] / 1000 * info.fps) + 1 > len(pts_ms)
    shown_at = [t / info.fps * 1000 for t in range(info.num_frames)]  # ms
    on_screen = [max(i for i, pts in enumerate(pts_ms) if pts <= ms + 1) for ms in shown_at]
    assert all(got == on_screen for got in frames)


def test_auto_backend_reads(video):
    with FrameReader(video) as reader:
        assert reader.backend == ("torchcodec" if torchcodec_status() is None else "pyav")
        assert decode_indices(reader.read([4, 38])) == [4, 38]


@needs_torchcodec
def test_auto_prefers_torchcodec_and_records_its_version(video):
    import importlib.metadata

    with FrameReader(video) as reader:
        assert (reader.backend, reader.backend_version) == ("torchcodec", importlib.metadata.version("torchcodec"))
    with FrameReader(video, backend="pyav") as reader:
        assert (reader.backend, reader.backend_version) == ("pyav", av.__version__)


def test_auto_falls_back_to_pyav_when_torchcodec_does_not_import(video, monkeypatch, caplog):
    import sys

    import adapttoken_plugin.video.reader as reader_module

    monkeypatch.setitem(sys.modules, "torchcodec", None)  # `import torchcodec` raises ImportError
    monkeypatch.setattr(reader_module, "_fallback_noted", False)
    assert torchcodec_status() == "torchcodec is not installed"
    with caplog.at_level("WARNING"), FrameReader(video) as reader:
        assert reader.backend == "pyav"
        assert decode_indices(reader.read([4, 38])) == [4, 38]
    assert caplog.records == []  # not installed: the user chose PyAV, nothing to say
    with pytest.raises(ConfigError, match="torchcodec is not installed"):
        FrameReader(video, backend="torchcodec")


def test_auto_says_once_when_torchcodec_cannot_load_ffmpeg(video, monkeypatch, caplog):
    import types

    import adapttoken_plugin.video.reader as reader_module

    # what torchcodec looks like on a machine without FFmpeg libraries: it imports, its video ops do not load
    broken = types.ModuleType("torchcodec")
    broken.__version__, broken.ffmpeg_major_version = "0.17.0", None
    monkeypatch.setitem(__import__("sys").modules, "torchcodec", broken)
    monkeypatch.setattr(reader_module, "_fallback_noted", False)
    with caplog.at_level("WARNING"):
        for _ in range(3):
            with FrameReader(video) as reader:
                assert reader.backend == "pyav"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "cannot load FFmpeg" in lines[0] and "PyAV" in lines[0] and "\n" not in lines[0]
    with pytest.raises(ConfigError, match="cannot load FFmpeg"):
        FrameReader(video, backend="torchcodec")


@needs_torchcodec
def test_a_batch_torchcodec_fails_on_is_decoded_by_pyav(video):
    indices = [3, 8, 21]
    with FrameReader(video, backend="torchcodec", size=(24, 32)) as reader, \
            FrameReader(video, backend="pyav", size=(24, 32)) as pyav:
        impl = reader._impl

        class Failing:
            def get_frames_played_at(self, seconds):
                raise RuntimeError("Requested next frame while there are no more frames left to decode.")

        impl._decoder = Failing()
        frames = reader.read(indices)
        assert impl.fallback_reads == 1
        assert np.array_equal(frames, pyav.read(indices))
        assert np.array_equal(reader.read([5]), pyav.read([5])) and impl.fallback_reads == 2  # PyAV from now on
    assert decode_indices(frames) == indices


def test_pyav_seeks_across_gaps_longer_than_a_keyframe_interval(tmp_path, monkeypatch):
    """Opening probes the file's end; the keyframe interval must not be measured across that jump, or every
    later gap looks shorter than one interval and is decoded frame by frame instead of seeked over."""
    from adapttoken_plugin.video.pyav_backend import PyAVBackend

    path = tmp_path / "long.mp4"
    write_video(path, (index_frame(i % 256, 16, 16) for i in range(400)), fps=FPS)  # a keyframe every 8 frames
    decoded = []
    next_frame = PyAVBackend._next_frame_object

    def counting(self):
        frame = next_frame(self)
        decoded.append(frame is not None)
        return frame

    monkeypatch.setattr(PyAVBackend, "_next_frame_object", counting)
    with FrameReader(path, backend="pyav") as reader:
        assert decode_indices(reader.read([200])) == [200 % 256]
        decoded.clear()
        assert decode_indices(reader.read([300])) == [300 % 256]
    # up to the next keyframe (where the interval is learnt), then from the keyframe before 300: not 100 frames
    assert sum(decoded) <= 2 * int(FPS) + 1


def test_write_video_keeps_colours(tmp_path):
    path = tmp_path / "colours.mp4"
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (200, 100, 50)]
    write_video(path, (np.full((32, 32, 3), c, dtype=np.uint8) for c in colours), fps=4.0)
    with FrameReader(path, backend="pyav") as reader:
        frames = reader.read(range(len(colours)))
    assert np.abs(frames.reshape(4, -1, 3).mean(axis=1) - np.array(colours)).max() < 4


def test_write_video_rejects_odd_sizes_and_no_frames(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", [np.zeros((33, 32, 3), np.uint8)])
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "none.mp4", iter([]))
    with pytest.raises(ValueError, match="frame 1"):
        write_video(tmp_path / "mixed.mp4", [np.zeros((32, 32, 3), np.uint8), np.zeros((32, 34, 3), np.uint8)])


# --------------------------------------------------------------------------------------------------
# errors


def _assert_video_read_error(excinfo, *fragments: str) -> None:
    assert isinstance(excinfo.value, AdaptTokenError)
    assert isinstance(excinfo.value, OSError)
    for fragment in fragments:
        assert fragment in str(excinfo.value)


@pytest.mark.parametrize("backend_name", ["auto", *backend_params()])
def test_missing_file(tmp_path, backend_name):
    path = tmp_path / "nope.mp4"
    with pytest.raises(VideoReadError) as excinfo:
        FrameReader(path, backend=backend_name)
    _assert_video_read_error(excinfo, str(path), "no such file")


@pytest.mark.parametrize("backend_name", ["auto", *backend_params()])
def test_garbage_file(tmp_path, backend_name):
    path = tmp_path / "notes.mp4"
    path.write_text("this is a shopping list, not a video\n" * 50)
    with pytest.raises(VideoReadError) as excinfo:
        FrameReader(path, backend=backend_name)
    _assert_video_read_error(excinfo, str(path))


@pytest.mark.parametrize("backend_name", ["auto", *backend_params()])
def test_file_without_video_frames(tmp_path, backend_name):
    path = tmp_path / "audio_only.mp4"
    container = av.open(str(path), mode="w")
    stream = container.add_stream("aac", rate=16000)
    stream.layout = "mono"
    for k in range(10):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, k * 1024
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    with pytest.raises(VideoReadError) as excinfo:
        FrameReader(path, backend=backend_name)
    _assert_video_read_error(excinfo, str(path))


@pytest.mark.parametrize("bad", [[-1], [NUM_FRAMES], [0, 5, NUM_FRAMES + 100], [10**9]])
def test_out_of_range_index(video, backend, bad):
    with FrameReader(video, backend=backend) as reader:
        with pytest.raises(VideoReadError) as excinfo:
            reader.read(bad)
        _assert_video_read_error(excinfo, video, f"{NUM_FRAMES} readable frames")
        assert decode_indices(reader.read([3])) == [3]  # the reader still works afterwards


def test_closed_reader_and_bad_arguments(video):
    reader = FrameReader(video, backend="pyav")
    reader.close()
    reader.close()
    with pytest.raises(VideoReadError, match="closed"):
        reader.read([0])
    with pytest.raises(ConfigError, match="backend"):
        FrameReader(video, backend="ffmpeg")
    with pytest.raises(ConfigError, match="size"):
        FrameReader(video, size=(0, 10))
    with FrameReader(video, backend="pyav") as reader, pytest.raises(TypeError, match="integers"):
        reader.read([1.5])


def _corrupt_mp4_tail(path, keep: float) -> None:
    """Zero the last part of the mp4's media data, leaving its index (moov) intact."""
    data = bytearray(path.read_bytes())
    pos = 0
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"mdat":
            start, end = pos + 8, pos + size
            cut = start + int((end - start) * keep)
            data[cut:end] = bytes(end - cut)
            path.write_bytes(bytes(data))
            return
        pos += size
    raise AssertionError("no mdat box")


def test_over_reported_frame_count_is_capped(tmp_path, backend):
    # The container still lists every frame, but the tail does not decode: the shape of file that makes
    # decord hang (dmlc/decord#373). info must count only decodable frames, and read must refuse the rest.
    path = tmp_path / "broken_tail.mp4"
    write_video(path, (index_frame(i) for i in range(120)), fps=FPS)
    _corrupt_mp4_tail(path, keep=0.5)
    with av.open(str(path)) as container:
        reported = container.streams.video[0].frames
        decodable = 0
        try:
            for _ in container.decode(video=0):
                decodable += 1
        except av.FFmpegError:
            pass
    assert reported == 120 and 0 < decodable < 120

    with FrameReader(path, backend=backend) as reader:
        n = reader.info.num_frames
        assert n == decodable
        assert decode_indices(reader.read([0, n // 2, n - 1])) == [0, n // 2, n - 1]
        with pytest.raises(VideoReadError, match="readable frames"):
            reader.read([n])
        with pytest.raises(VideoReadError):
            reader.read([reported - 1])


# --------------------------------------------------------------------------------------------------
# sampling


def info_of(num_frames: int, fps: float = FPS) -> VideoInfo:
    return VideoInfo(path="v.mp4", num_frames=num_frames, fps=fps, width=W, height=H)


def test_sampling_at_fps():
    indices = sample_frame_indices(info_of(40), fps=2.0, max_frames=100)  # 5 s at 2 fps
    assert indices.dtype == np.int64
    assert indices.tolist() == list(range(0, 40, 4))


def test_sampling_above_native_rate_takes_every_frame():
    assert sample_frame_indices(info_of(40), fps=30.0, max_frames=100).tolist() == list(range(40))


def test_sampling_cap_spreads_over_the_whole_video():
    info = info_of(28_800, fps=8.0)  # an hour at 8 fps
    indices = sample_frame_indices(info, fps=2.0, max_frames=1000)
    assert len(indices) == 1000
    assert indices[0] == 0 and indices[-1] == info.num_frames - 1
    gaps = np.diff(indices)
    assert gaps.min() >= 28 and gaps.max() <= 29  # even: 28,799 / 999 = 28.8
    assert sample_frame_indices(info_of(40), fps=2.0, max_frames=4).tolist() == [0, 13, 26, 39]


def test_sampling_multiple_of():
    assert sample_frame_indices(info_of(40), fps=2.0, max_frames=4, multiple_of=3).tolist() == [0, 20, 39]
    on_grid = sample_frame_indices(info_of(36), fps=2.0, max_frames=100, multiple_of=2)  # 9 samples -> 8
    assert on_grid.tolist() == list(range(0, 32, 4))


def test_sampling_empty():
    with pytest.raises(EmptyVideoError) as excinfo:
        sample_frame_indices(info_of(40), fps=0.1, max_frames=100, multiple_of=2)  # 1 frame, pairs needed
    message = str(excinfo.value)
    assert "40 frames" in message and "fps=0.1" in message and "max_frames=100" in message
    assert isinstance(excinfo.value, VideoReadError) and isinstance(excinfo.value, AdaptTokenError)
    with pytest.raises(EmptyVideoError, match="0 frames"):
        sample_frame_indices(info_of(0), fps=2.0, max_frames=100)
    with pytest.raises(EmptyVideoError):
        sample_frame_indices(info_of(40), fps=2.0, max_frames=1, multiple_of=2)


@pytest.mark.parametrize("kwargs", [{"fps": 0.0, "max_frames": 8}, {"fps": 1.0, "max_frames": 0},
                                    {"fps": 1.0, "max_frames": 8, "multiple_of": 0}])
def test_sampling_rejects_bad_arguments(kwargs):
    with pytest.raises(ConfigError):
        sample_frame_indices(info_of(40), **kwargs)


@settings(max_examples=300, deadline=None)
@given(
    num_frames=st.integers(1, 200_000),
    native_fps=st.sampled_from([1.0, 7.5, 8.0, 23.976, 24.0, 25.0, 29.97, 30.0, 60.0]),
    fps=st.floats(0.01, 90.0),
    max_frames=st.integers(1, 10_000),
    multiple_of=st.integers(1, 4),
)
def test_sampling_properties(num_frames, native_fps, fps, max_frames, multiple_of):
    info = info_of(num_frames, native_fps)
    # samples on the fps grid: times k / fps inside the video (k < duration * fps), at most one per native frame
    grid_span = num_frames * fps / native_fps
    assume(abs(grid_span - round(grid_span)) > 1e-6)  # a sample exactly at the end is float noise either way
    on_grid = min(num_frames, math.ceil(grid_span))
    expected = min(on_grid, max_frames) // multiple_of * multiple_of
    if expected == 0:
        with pytest.raises(EmptyVideoError):
            sample_frame_indices(info, fps, max_frames, multiple_of)
        return
    indices = sample_frame_indices(info, fps, max_frames, multiple_of)
    assert indices.dtype == np.int64
    assert len(indices) == expected and len(indices) % multiple_of == 0
    assert indices[0] == 0 and indices[-1] < num_frames
    assert (np.diff(indices) > 0).all()
    if on_grid <= max_frames and fps >= native_fps:
        assert indices.tolist() == list(range(expected))
    elif on_grid <= max_frames:  # the frame on screen at time k / fps
        times = np.arange(expected) / fps
        assert (np.abs(indices / native_fps - times) <= 1 / native_fps + 1e-9).all()
    elif expected > 1:  # spread: first and last frame, near-equal gaps
        assert indices[-1] == num_frames - 1
        gaps = np.diff(indices)
        assert gaps.max() - gaps.min() <= 1


def test_an_interrupted_write_leaves_nothing_at_the_path(tmp_path):
    """A Ctrl-C mid-write used to leave a valid but short video at the final path, reused later as complete."""
    path = tmp_path / "clip.mp4"

    def interrupted():
        for i in range(40):
            if i == 20:
                raise KeyboardInterrupt
            yield index_frame(i)

    with pytest.raises(KeyboardInterrupt):
        write_video(path, interrupted(), fps=FPS)
    assert list(tmp_path.iterdir()) == []
    write_video(path, (index_frame(i) for i in range(12)), fps=FPS)
    with pytest.raises(KeyboardInterrupt):  # over an existing video: the old one stays whole
        write_video(path, interrupted(), fps=FPS)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    with FrameReader(path, backend="pyav") as reader:
        assert reader.info.num_frames == 12


def test_a_killed_write_leaves_nothing_at_the_path(tmp_path):
    """SIGKILL mid-write used to leave a video without its index at the path, which every later run failed on."""
    import subprocess
    import sys

    path = tmp_path / "clip.mp4"
    code = ("import os, signal, numpy as np\n"
            "from adapttoken_plugin.video import write_video\n"
            "def frames():\n"
            "    for i in range(64):\n"
            "        if i == 40:\n"
            "            os.kill(os.getpid(), signal.SIGKILL)\n"
            "        yield np.full((32, 32, 3), i, np.uint8)\n"
            f"write_video({str(path)!r}, frames(), fps=8.0)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr
    assert not path.exists()


@needs_torchcodec
def test_torchcodec_decodes_on_the_cpu_when_the_cuda_decoder_cannot_open(video, monkeypatch, caplog):
    import torchcodec.decoders

    import adapttoken_plugin.video.torchcodec_backend as backend_module

    real = torchcodec.decoders.VideoDecoder
    devices = []

    def decoder(path, device="cpu", **options):
        devices.append(device)
        if device != "cpu":
            raise RuntimeError("Unsupported device: cuda (no NVDEC in this build)")
        return real(path, device=device, **options)

    monkeypatch.setattr(torchcodec.decoders, "VideoDecoder", decoder)
    monkeypatch.setattr(backend_module, "_cpu_noted", False)
    with caplog.at_level("WARNING"):
        for _ in range(2):
            with FrameReader(video, backend="torchcodec", size=(24, 32), device="cuda:0") as reader:
                assert reader.device == "cpu"
                assert decode_indices(reader.read([2, 30])) == [2, 30]
    assert devices == ["cuda:0", "cpu"] * 2
    assert len(caplog.records) == 1 and "cuda:0" in caplog.records[0].getMessage()


def test_closing_a_decord_reader_returns_its_freed_heap_to_the_os(video, monkeypatch):
    pytest.importorskip("decord")
    import adapttoken_plugin.video.decord_backend as decord_module
    from adapttoken_plugin.heap import release_free_heap

    release_free_heap()  # runs here (glibc) without error; a no-op elsewhere
    calls = []
    monkeypatch.setattr(decord_module, "release_free_heap", lambda: calls.append(1))
    reader = FrameReader(video, backend="decord", size=(24, 32))
    assert decode_indices(reader.read([1, 30])) == [1, 30]
    reader.close()
    reader.close()
    assert calls == [1]


def test_describe_backend_resolves_auto_and_names_the_version(monkeypatch):
    import sys

    from adapttoken_plugin.video.reader import backend_version, describe_backend

    assert describe_backend("pyav") == f"pyav {av.__version__}"
    expected = "torchcodec" if torchcodec_status() is None else "pyav"
    assert describe_backend("auto") == f"{expected} {backend_version(expected)}"
    monkeypatch.setitem(sys.modules, "torchcodec", None)
    assert describe_backend("auto") == f"pyav {av.__version__}"
    with pytest.raises(ConfigError, match="backend"):
        describe_backend("opencv")
