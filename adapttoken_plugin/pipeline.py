"""The streaming path: answer a question about a video file too long to preprocess at once.

Frames are sampled by fps / max_frames, decoded at the model's resolution (never at native size),
encoded, scored and dropped group by group; only the candidate tokens' features are kept until the
final pass. A video is first planned (`plan_video`: probe, sampled indices, frame size, token layout;
no sampled frame decoded), then decoded (`decode`: frames read in a background thread ahead of the
groups that need them, kept per `frame_cache` within `video_cache_mib`); `open_video` does both. The
prompt needs only the plan, so a caller whose group-pass evidence is cached never decodes the video.

A Pipeline keeps what it learnt of recent videos for the next question on the same file: its plan, its
decoded frames and the visual features of each group it encoded (RAM within `video_cache_mib`, least
recently used dropped first; `disk` frames of the latest video): VideoMME's three questions per video
decode and encode it once.

    pipe = Pipeline(model, processor, AdaptTokenConfig(selector="adapttoken-lite", budget=4096))
    ans = pipe.answer("video.mp4", "What is cut in half?", options=["tomato", "cucumber", "bread", "cheese"])
    ans.letter, ans.text, ans.trace
"""

from __future__ import annotations

import dataclasses
import math
import re
import string
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .adapters.base import PromptParts, adapter_for, execution_device
from .config import AdaptTokenConfig
from .distributed import attach_native, check_ranks_agree
from .errors import AdaptTokenError, ConfigError, UnsupportedInputError, VideoReadError
from .layout import GroupEvidence, VideoLayout, interleaved_groups
from .selectors.base import Selector
from .stage import Query, Stage, StageResult
from .trace import Trace
from .video import BACKENDS, FrameReader, VideoInfo, sample_frame_indices, video_key_of_file
from .video._common import pyav_available
from .video.pyav_backend import keyframe_interval
from .video_cache import (
    GROUP_READ_COST_LIMIT,
    ByteBudgetCache,
    DecodePlan,
    DiskFrames,
    FeatureCachingAdapter,
    FrameSource,
    UnitPixels,
    group_read_cost,
    plan_decoding,
    video_id_of,
)

#: plans of recent videos kept for their next question (a plan is small: indices and a layout)
PLANS_KEPT = 16

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


def check_answer_arguments(options: Sequence[str] | None, max_new_tokens: int) -> list[str] | None:
    """The options as a list (None: an open question), checked with `max_new_tokens` before any work: a string
    is not a list of options ("red" would become the three options r, e, d)."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens={max_new_tokens!r} is out of range: expected an integer >= 1")
    if options is None:
        return None
    if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
        raise UnsupportedInputError(f"options={options!r}: expected a list of option strings, e.g. "
                                    "['red', 'green', 'blue'] (or None for an open question)")
    if not all(isinstance(option, str) for option in options):
        raise UnsupportedInputError(f"options={list(options)!r}: every option must be a string")
    if len(options) > len(string.ascii_uppercase):
        raise UnsupportedInputError(f"at most {len(string.ascii_uppercase)} options are supported, got {len(options)}")
    return list(options)


def parse_letter(text: str, num_options: int) -> str | None:
    """First standalone option letter in the reply ("B", "(B)", "B. bread"), else None."""
    valid = string.ascii_uppercase[:num_options]
    match = re.search(rf"(?<![A-Za-z])([{valid}])(?![a-z])", text.strip())
    return match.group(1) if match else None


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
        seconds: wall time of probing the file and sampling, in seconds (of finding the plan again, for a
            video planned before).
        content_key: `video_key_of_file` of the file (what the caches and per-question draws know it by).
    """

    path: Path
    info: VideoInfo
    indices: np.ndarray
    frame_size: tuple[int, int]
    layout: VideoLayout
    sampled_fps: float
    seconds: float
    content_key: str = ""

    @property
    def video_fps(self) -> float:
        """The file's native frame rate in frames per second (`layout.frame_indices` count in its frames)."""
        return self.info.fps


@dataclass
class VideoSession:
    """A video open for decoding (`Pipeline.decode`): its plan and `pixels_for(units)`, the encoder inputs of
    some units.

    Attributes:
        plan: what is decoded (layout, frame size, sampled indices, frame rates).
        pixels_for: (U,) int64 frame-unit indices -> the encoder inputs of those units' frames for the
            Pipeline's adapter (`Pipeline.adapter`: units whose features are cached come back as those
            features, which only its `encode` reads).
        frame_cache: where frames are kept ("memory", "disk" or "off": `auto` resolved, and `off` when the
            budget cannot hold two groups' frames).
        decode_seconds: wall time of setting the session up (the decoding itself runs in the background or on
            demand, and is counted where the stage waits for it), in seconds.
        source: the frames (`FrameSource`): what it decoded, and its reader once opened.
        decoded_by: (backend, version, device) that decoded the frames an earlier session left in the cache.
    """

    plan: VideoPlan
    pixels_for: Callable[[torch.Tensor], dict[str, Any]]
    frame_cache: str
    decode_seconds: float
    source: FrameSource | None = None
    decoded_by: tuple[str, str, str] | None = None

    def _decoder(self) -> tuple[str, str, str]:
        reader = self.source.reader if self.source is not None else None
        if reader is not None:
            return reader.backend, reader.backend_version, reader.device
        return self.decoded_by or ("", "", "")

    @property
    def video_backend(self) -> str:
        """The decoder of these frames ("torchcodec", "pyav", "decord": `auto` resolved); "" when none ran."""
        return self._decoder()[0]

    @property
    def video_backend_version(self) -> str:
        """Its version."""
        return self._decoder()[1]

    @property
    def video_decode_device(self) -> str:
        """Where it decoded ("cpu", or the CUDA device torchcodec decoded on)."""
        return self._decoder()[2]

    @property
    def frames_decoded(self) -> int:
        """Frames decoded in this session (0 when every frame or feature came from the cache)."""
        return self.source.frames_decoded if self.source is not None else 0

    @property
    def decode_order(self) -> str:
        """How the frames are read: "one pass", "N passes", "growing batches" or "on demand" (`DecodePlan`)."""
        return self.source.plan.describe() if self.source is not None else "on demand"

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
        """Seconds of video setup: probing and sampling (the plan) plus setting the session up."""
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
        #: decoded frames (frame_cache=memory) and encoded features of recent videos, `video_cache_mib` in all
        self.cache = ByteBudgetCache(self.config.video_cache_mib * 2**20)
        self.adapter = FeatureCachingAdapter(adapter_for(model, self.config), self.cache)
        self.stage = Stage(model, self.adapter, self.config)  # validates the settings against the model
        attach_native(model)
        self.backend = backend
        self._plans: OrderedDict[tuple[str, str], VideoPlan] = OrderedDict()  # (content key, path) -> plan
        self._disk: tuple[str, DiskFrames] | None = None  # the frame file of the latest video (frame_cache=disk)
        self._decoded_by: dict[str, tuple[str, str, str]] = {}  # video id -> (backend, version, device)
        self._keyframe_intervals: dict[str, float] = {}  # content key -> native frames between keyframes
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
        (see FrameReader); no frame is resized or returned. A video planned before (same content at the same
        path) is not probed again. Raises VideoReadError / EmptyVideoError for unreadable or empty videos.
        """
        cfg = self.config
        start = time.perf_counter()
        content_key = video_key_of_file(video) if Path(video).is_file() else ""  # else the probe says why
        known = self._plans.get((content_key, str(video)))
        if known is not None:
            self._plans.move_to_end((content_key, str(video)))
            return dataclasses.replace(known, seconds=time.perf_counter() - start)
        info = self._probe(video)
        indices = sample_frame_indices(info, cfg.fps, cfg.max_frames, multiple_of=self.adapter.frames_per_unit)
        indices.flags.writeable = False  # the plan is shared by its sessions and the prompt
        try:
            height, width = self.adapter.frame_size(self.processor, info.height, info.width, cfg.max_pixels,
                                                    len(indices))
        except ValueError as error:  # the processor's own resize rule refuses the size (an extreme aspect ratio)
            if isinstance(error, AdaptTokenError):
                raise
            raise UnsupportedInputError(f"{video}: frames of {info.width} x {info.height} px cannot be resized for "
                                        f"{type(self.model).__name__} ({error})") from None
        sampled_fps = min(cfg.fps, len(indices) / info.duration) if info.duration > 0 else cfg.fps
        layout = self.adapter.layout_for_frames(len(indices), height, width, sampled_fps,
                                                tuple(int(i) for i in indices))
        plan = VideoPlan(Path(video), info, indices, (height, width), layout, sampled_fps,
                         time.perf_counter() - start, content_key)
        self._plans[(content_key, str(video))] = plan
        while len(self._plans) > PLANS_KEPT:
            self._plans.popitem(last=False)
        return plan

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

        Frames are decoded ahead of the groups that need them in a background thread (`decode_ahead`; see
        `video_cache`) or when first asked for, and kept per `frame_cache`: in RAM within `video_cache_mib`
        ("memory"), in a temporary file ("disk") or not at all ("off"). What is kept outlives the session,
        for the next question on the same video. Raises VideoReadError when a frame fails to decode.
        """
        start = time.perf_counter()
        cfg = self.config
        frame_shape = (*plan.frame_size, 3)
        frame_bytes = math.prod(frame_shape)
        store = cfg.frame_cache
        if store == "auto":
            store = "memory" if len(plan.indices) * frame_bytes <= self.cache.budget else "disk"
        order = self._decoding_order(plan, frame_bytes, store)
        if store == "memory" and order is None:  # the budget cannot hold two groups' frames: keep none
            store, order = "off", DecodePlan.empty()
        video_id = video_id_of(plan.content_key or str(plan.path), plan.frame_size, plan.indices, self.backend,
                               self.decode_device)
        disk = self._disk_frames(video_id, len(plan.indices), frame_shape) if store == "disk" else None

        def open_reader() -> FrameReader:
            return FrameReader(plan.path, backend=self.backend, size=plan.frame_size, device=self.decode_device)

        source = FrameSource(open_reader, plan.indices, frame_shape, store, self.cache, video_id, order,
                             cfg.decode_ahead, disk)
        fpu = plan.layout.frames_per_unit

        def pixels_for(units: torch.Tensor) -> dict[str, Any]:
            ids = tuple(units.tolist())
            key = ("features", video_id, ids)
            cached = self.adapter.cached_features(key)
            if cached is not None:  # encoded before: neither decoded nor preprocessed again
                return UnitPixels({}, key, *cached)
            wanted = (units[:, None] * fpu + torch.arange(fpu)[None, :]).flatten().numpy()
            frames = source.get(wanted, group=order.group_of_units.get(ids))
            return UnitPixels(self.adapter.frames_to_pixels(self.processor, frames), key)

        try:
            yield VideoSession(plan, pixels_for, store, time.perf_counter() - start, source,
                               self._decoded_by.get(video_id))
        finally:
            source.close()
            if source.reader is not None:
                reader = source.reader
                self._decoded_by[video_id] = (reader.backend, reader.backend_version, reader.device)

    def _decoding_order(self, plan: VideoPlan, frame_bytes: int, store: str) -> DecodePlan | None:
        """The background decoder's batches for the stage's groups (none for selectors without group passes, which
        ask for their frames in time order); None when a memory store cannot hold two batches of one group."""
        selector = self.stage.selector
        if store == "off" or not selector.needs_group_pass:
            return DecodePlan.empty()
        groups = interleaved_groups(plan.layout.num_units, self.stage.units_per_group)
        fpu = plan.layout.frames_per_unit
        # the batch being read and the one being used are both held (pinned) until asked for
        cap = self.cache.budget // 2 if store == "memory" else None
        if cap is not None and max(len(g) for g in groups) * fpu * frame_bytes > cap:
            return None
        may_stop_early = type(selector).should_stop is not Selector.should_stop
        if may_stop_early and len(groups) > 1:
            step = float(np.median(np.diff(plan.indices))) if len(plan.indices) > 1 else 1.0
            may_stop_early = group_read_cost(self._keyframe_interval(plan), step, fpu, len(groups)) \
                <= GROUP_READ_COST_LIMIT
        return plan_decoding(groups, fpu, frame_bytes, may_stop_early, cap)

    def _keyframe_interval(self, plan: VideoPlan) -> float:
        """Native frames between the video's keyframes (from its first packets; kept per video)."""
        key = plan.content_key or str(plan.path)
        if key not in self._keyframe_intervals:
            # without PyAV to look: x264's default interval, the most common
            self._keyframe_intervals[key] = keyframe_interval(str(plan.path)) if pyav_available() else 250.0
        return self._keyframe_intervals[key]

    def _disk_frames(self, video_id: str, count: int, frame_shape: tuple[int, int, int]) -> DiskFrames:
        """The frame file of this video: kept from its last session, or new (the previous video's is deleted)."""
        if self._disk is not None and self._disk[0] == video_id:
            return self._disk[1]
        if self._disk is not None:
            self._disk[1].close()
        self._disk = (video_id, DiskFrames(count, frame_shape))
        return self._disk[1]

    def clear_cache(self) -> None:
        """Forget every video: plans, cached frames and features, the frame file."""
        self._plans.clear()
        self.cache.clear()
        self._decoded_by.clear()
        self._keyframe_intervals.clear()
        if self._disk is not None:
            self._disk[1].close()
            self._disk = None

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
        start = self.stage.clock.now()
        inputs = self.adapter.model_inputs(prompt, layout, result.token_ids, result.features)
        with torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        check_ranks_agree(self.model, "the answer", out)
        result.trace.add_seconds("final", self.stage.clock.now() - start)
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
        when the configured entropy needs options and none are given, UnsupportedInputError for options that
        are not a list of strings, ConfigError for max_new_tokens < 1 (all before any frame is decoded).
        """
        options = check_answer_arguments(options, max_new_tokens)
        option_ids = self.option_token_ids(len(options)) if options else None
        self.stage.check_options(option_ids)  # before the video is decoded
        encoded = self.adapter.encoded
        with self.open_video(video) as session:
            prompt = self.prompt_parts(format_question(question, options), session)
            key = session.plan.content_key if self.stage.needs_video_key else None
            result = self.stage.run(Query(prompt, session.layout, session.pixels_for, option_ids, key), on_group)
        trace = result.trace
        trace.add_seconds("decode", session.setup_seconds)
        trace.frame_cache = session.frame_cache
        trace.frame_size = list(session.frame_size)
        trace.video_backend, trace.video_backend_version = session.video_backend, session.video_backend_version
        trace.video_decode_device = session.video_decode_device
        trace.frames_decoded, trace.encoder_calls = session.frames_decoded, self.adapter.encoded - encoded
        trace.decode_order = session.decode_order
        return self.generate_answer(prompt, session.layout, result, options, max_new_tokens)
