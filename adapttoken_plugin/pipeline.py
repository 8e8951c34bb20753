"""The streaming path: answer a question about a video file too long to preprocess at once.

Frames are sampled by fps / max_frames, decoded at the model's resolution group by group (never the
whole video), encoded, scored and dropped; only the candidate tokens' features are kept until the
final pass. A video is first planned (`plan_video`: probe, sampled indices, frame size, token layout;
no sampled frame decoded), then decoded (`decode`, per `frame_cache`); `open_video` does both. The prompt
needs only the plan, so a caller whose group-pass evidence is cached never decodes the video.

    pipe = Pipeline(model, processor, AdaptTokenConfig(selector="adapttoken-lite", budget=4096))
    ans = pipe.answer("video.mp4", "What is cut in half?", options=["tomato", "cucumber", "bread", "cheese"])
    ans.letter, ans.text, ans.trace
"""

from __future__ import annotations

import math
import re
import string
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .adapters.base import PromptParts, adapter_for, execution_device
from .config import FRAME_CACHE_AUTO_LIMIT, AdaptTokenConfig
from .distributed import attach_native, check_ranks_agree
from .errors import ConfigError, UnsupportedInputError, VideoReadError
from .layout import GroupEvidence, VideoLayout
from .stage import Query, Stage, StageResult
from .trace import Trace
from .video import BACKENDS, FrameReader, VideoInfo, sample_frame_indices, video_key_of_file
from .video._common import pyav_available

OPTION_INSTRUCTION = "Answer with the option's letter from the given choices directly."


@dataclass
class Answer:
    """The model's answer. `letter` is the chosen option letter (None for open questions or when
    the reply names no valid letter); `text` the decoded reply; `trace` what the stage did."""

    letter: str | None
    text: str
    trace: Trace


def format_question(question: str, options: Sequence[str] | None) -> str:
    """The multiple-choice prompt used by lmms-eval's video tasks: question, lettered options, instruction."""
    if not options:
        return question
    letters = string.ascii_uppercase
    if len(options) > len(letters):
        raise UnsupportedInputError(f"at most {len(letters)} options are supported, got {len(options)}")
    lines = [question, *(f"{letters[i]}. {opt}" for i, opt in enumerate(options)), OPTION_INSTRUCTION]
    return "\n".join(lines)


def parse_letter(text: str, num_options: int) -> str | None:
    """First standalone option letter in the reply ("B", "(B)", "B. bread"), else None."""
    valid = string.ascii_uppercase[:num_options]
    match = re.search(rf"(?<![A-Za-z])([{valid}])(?![a-z])", text.strip())
    return match.group(1) if match else None


class SampledFrames:
    """The sampled frames of one video, by sample position, read per `frame_cache` mode.

    `memory` / `disk`: one sequential pass decodes every sampled frame into a uint8 array (RAM or a
    temporary memory-mapped file); decoders read in order far faster than they seek, and interleaved
    groups would otherwise seek across the whole video once per group. `off`: decode on demand.
    `auto`: `memory` up to FRAME_CACHE_AUTO_LIMIT bytes of frames, else `disk`. `mode` holds the one used.
    """

    def __init__(self, reader: FrameReader, indices: np.ndarray, mode: str, chunk: int = 256) -> None:
        self.reader, self.indices, self.cache = reader, np.asarray(indices), None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.fill_seconds = 0.0
        self.mode = mode
        if mode == "off":
            return
        start = time.perf_counter()
        first = reader.read(self.indices[:chunk])
        shape = (len(self.indices), *first.shape[1:])
        if mode == "auto":
            self.mode = "memory" if math.prod(shape) <= FRAME_CACHE_AUTO_LIMIT else "disk"
        if self.mode == "disk":
            self._tmp = tempfile.TemporaryDirectory(prefix="adapttoken-frames-")
            self.cache = np.lib.format.open_memmap(Path(self._tmp.name) / "frames.npy", mode="w+", dtype=np.uint8,
                                                   shape=shape)
        else:
            self.cache = np.empty(shape, dtype=np.uint8)
        self.cache[: len(first)] = first
        for s in range(chunk, len(self.indices), chunk):
            self.cache[s:s + chunk] = reader.read(self.indices[s:s + chunk])
        self.fill_seconds = time.perf_counter() - start

    def get(self, positions: np.ndarray) -> np.ndarray:
        """Frames (len(positions), H, W, 3) uint8 at sample positions (not file indices)."""
        if self.cache is not None:
            return np.asarray(self.cache[positions])
        return self.reader.read(self.indices[positions])

    def close(self) -> None:
        self.cache = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SampledFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, eq=False)
class VideoPlan:
    """How one video file will be read, known before any sampled frame is decoded (`Pipeline.plan_video`).

    Everything here comes from the file's metadata and the config: what the prompt of every family needs
    (the layout and the native frame rate) and what `Pipeline.decode` needs to read the frames.

    Attributes:
        path: the video file.
        info: the file's readable frame count, native frame rate (frames per second) and size (pixels).
        indices: (num_frames,) int64, read-only: file frame indices of the sampled frames, ascending.
        frame_size: (height, width) in pixels each sampled frame is resized to while it is decoded.
        layout: token layout of the sampled frames; `layout.frame_indices` holds `indices`.
        sampled_fps: samples per second of video time: the configured fps, or fewer when `max_frames`
            spreads the samples over the whole video.
        seconds: wall time of probing the file and sampling, in seconds.
    """

    path: Path
    info: VideoInfo
    indices: np.ndarray
    frame_size: tuple[int, int]
    layout: VideoLayout
    sampled_fps: float
    seconds: float

    @property
    def video_fps(self) -> float:
        """The file's native frame rate in frames per second (`layout.frame_indices` count in its frames)."""
        return self.info.fps


@dataclass
class VideoSession:
    """A decoded video (`Pipeline.decode`): its plan and `pixels_for(units)`, the encoder inputs of some units.

    Attributes:
        plan: what is decoded (layout, frame size, sampled indices, frame rates).
        pixels_for: (U,) int64 frame-unit indices -> the adapter's encoder inputs for those units' frames.
        frame_cache: the frame-cache mode in use ("memory", "disk" or "off"; "auto" is resolved).
        decode_seconds: wall time of opening the sized reader and filling the frame cache, in seconds.
        video_backend, video_backend_version: the decoder reading the frames ("torchcodec", "pyav", "decord";
            `auto` resolved) and its version.
        video_decode_device: where it decodes ("cpu", or the CUDA device torchcodec decodes on).
    """

    plan: VideoPlan
    pixels_for: Callable[[torch.Tensor], dict[str, Any]]
    frame_cache: str
    decode_seconds: float
    video_backend: str = ""
    video_backend_version: str = ""
    video_decode_device: str = "cpu"

    @property
    def layout(self) -> VideoLayout:
        """Token layout of the sampled frames (the plan's)."""
        return self.plan.layout

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) in pixels of the decoded frames."""
        return self.plan.frame_size

    @property
    def video_fps(self) -> float:
        """The file's native frame rate in frames per second (`layout.frame_indices` count in its frames)."""
        return self.plan.video_fps

    @property
    def setup_seconds(self) -> float:
        """Seconds of video setup: probing and sampling (the plan) plus opening and filling the frame cache."""
        return self.plan.seconds + self.decode_seconds


class Pipeline:
    """Streaming AdaptToken over video files for one model and its processor.

    backend: the video decoder (`FrameReader`): "auto" (torchcodec when it loads, else PyAV), "torchcodec",
        "pyav" or "decord".
    decode_device: where torchcodec decodes: None for the model's device when that is a CUDA device (NVDEC;
        frames come back to host memory), else the CPU; "cpu" or "cuda:N" to choose. Other backends decode on
        the CPU.
    """

    def __init__(self, model: Any, processor: Any, config: AdaptTokenConfig | dict | None = None,
                 backend: str = "auto", decode_device: str | None = None) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"backend={backend!r} is not known: expected one of {BACKENDS}")
        self.model = model
        self.processor = processor
        self.config = AdaptTokenConfig.coerce(config)
        self.adapter = adapter_for(model, self.config)
        self.stage = Stage(model, self.adapter, self.config)  # validates the settings against the model
        attach_native(model)
        self.backend = backend
        if decode_device is None:
            device = execution_device(model)
            decode_device = str(device) if device.type == "cuda" else "cpu"
        self.decode_device = decode_device

    @property
    def prompt_needs_video(self) -> bool:
        """Whether the prompt has text around every frame unit (Qwen3-VL timestamps, InternVL frame labels),
        so that `prompt_parts` needs the video's plan."""
        return self.adapter.has_unit_text

    def prompt_parts(self, text: str, session: VideoPlan | VideoSession | None = None) -> PromptParts:
        """Token ids around the video for a user message holding the video then `text`.

        Families whose processor writes text around every frame unit (Qwen3-VL timestamps, InternVL frame
        labels) need the video's layout and native frame rate: pass its plan (`plan_video`, nothing decoded)
        or its session (`decode` / `open_video`). The others build the same parts without one.
        """
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
        rendered = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        if session is not None:
            return self.adapter.video_prompt(self.processor, rendered, session.layout, session.video_fps)
        if self.prompt_needs_video:
            raise UnsupportedInputError(f"the prompt of {type(self.model).__name__} has text around every frame: "
                                        "pass the video's plan (Pipeline.plan_video) to prompt_parts")
        return self.adapter.video_prompt(self.processor, rendered, None, 0.0)

    def option_token_ids(self, num_options: int) -> list[int]:
        letters = string.ascii_uppercase[:num_options]
        return [self.processor.tokenizer.convert_tokens_to_ids(letter) for letter in letters]

    def plan_video(self, video: str | Path) -> VideoPlan:
        """Probe `video` and decide what to read: sampled indices, frame size, layout. Decodes no sampled frame.

        The probe opens the file and, to verify its frame count, decodes its first frame and last second
        (see FrameReader); no frame is resized or returned. Raises VideoReadError / EmptyVideoError for
        unreadable or empty videos.
        """
        cfg = self.config
        start = time.perf_counter()
        info = self._probe(video)
        indices = sample_frame_indices(info, cfg.fps, cfg.max_frames, multiple_of=self.adapter.frames_per_unit)
        indices.flags.writeable = False  # the plan is shared by its sessions and the prompt
        height, width = self.adapter.frame_size(self.processor, info.height, info.width, cfg.max_pixels, len(indices))
        sampled_fps = min(cfg.fps, len(indices) / info.duration) if info.duration > 0 else cfg.fps
        layout = self.adapter.layout_for_frames(len(indices), height, width, sampled_fps,
                                                tuple(int(i) for i in indices))
        return VideoPlan(Path(video), info, indices, (height, width), layout, sampled_fps,
                         time.perf_counter() - start)

    def _probe(self, video: str | Path) -> VideoInfo:
        """The file's VideoInfo. torchcodec takes it from a PyAV probe anyway, so PyAV probes alone for `auto` and
        `torchcodec` (no torchcodec scan of the file just to plan it); the configured backend when PyAV fails."""
        if self.backend in ("auto", "torchcodec") and pyav_available():
            try:
                with FrameReader(video, backend="pyav") as probe:
                    return probe.info
            except VideoReadError:
                pass
        with FrameReader(video, backend=self.backend) as probe:
            return probe.info

    @contextmanager
    def decode(self, plan: VideoPlan) -> Iterator[VideoSession]:
        """Open the planned frames for reading; yields what the stage needs. `plan` comes from `plan_video`.

        Per `frame_cache`, every sampled frame is decoded here into a cache ("memory" / "disk") or each
        on demand by `pixels_for` ("off"); the cache is freed on exit. Raises VideoReadError when a frame
        fails to decode.
        """
        start = time.perf_counter()
        with FrameReader(plan.path, backend=self.backend, size=plan.frame_size, device=self.decode_device) as reader, \
                SampledFrames(reader, plan.indices, self.config.frame_cache) as frames:
            fpu = plan.layout.frames_per_unit

            def pixels_for(units: torch.Tensor) -> dict[str, Any]:
                wanted = (units[:, None] * fpu + torch.arange(fpu)[None, :]).flatten().numpy()
                return self.adapter.frames_to_pixels(self.processor, frames.get(wanted))

            yield VideoSession(plan, pixels_for, frames.mode, time.perf_counter() - start, reader.backend,
                               reader.backend_version, reader.device)

    @contextmanager
    def open_video(self, video: str | Path) -> Iterator[VideoSession]:
        """`plan_video` then `decode`: sample, size and (per `frame_cache`) decode one video.

        Raises VideoReadError / EmptyVideoError for unreadable or empty videos.
        """
        with self.decode(self.plan_video(video)) as session:
            yield session

    def generate_answer(self, prompt: PromptParts, layout: VideoLayout, result: StageResult,
                        options: Sequence[str] | None, max_new_tokens: int) -> Answer:
        """The final pass: greedy generation from the kept tokens at their full-video positions."""
        start = time.perf_counter()
        inputs = self.adapter.model_inputs(prompt, layout, result.token_ids, result.features)
        with torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        check_ranks_agree(self.model, "the answer", out)
        result.trace.add_seconds("final", time.perf_counter() - start)
        text = self.processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        letter = parse_letter(text, len(options)) if options else None
        return Answer(letter=letter, text=text.strip(), trace=result.trace)

    def answer(
        self,
        video: str | Path,
        question: str,
        options: Sequence[str] | None = None,
        max_new_tokens: int = 16,
        on_group: Callable[[GroupEvidence, int], None] | None = None,
    ) -> Answer:
        """Answer `question` about the video file `video` (options make it multiple choice, A, B, ...).

        `on_group(group, num_groups)` is called after each group pass (progress reporting).
        Raises VideoReadError / EmptyVideoError for unreadable or empty videos, OptionsRequiredError
        when the configured entropy needs options and none are given.
        """
        option_ids = self.option_token_ids(len(options)) if options else None
        self.stage.check_options(option_ids)  # before the video is decoded
        with self.open_video(video) as session:
            prompt = self.prompt_parts(format_question(question, options), session)
            key = video_key_of_file(video) if self.stage.needs_video_key else None
            result = self.stage.run(Query(prompt, session.layout, session.pixels_for, option_ids, key), on_group)
        result.trace.add_seconds("decode", session.setup_seconds)
        result.trace.frame_cache = session.frame_cache
        result.trace.video_backend, result.trace.video_backend_version = session.video_backend, \
            session.video_backend_version
        result.trace.video_decode_device = session.video_decode_device
        result.trace.frame_size = list(session.frame_size)
        return self.generate_answer(prompt, session.layout, result, options, max_new_tokens)
