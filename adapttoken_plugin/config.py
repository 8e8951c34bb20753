"""`AdaptTokenConfig`: every knob of the selector stage, validated, with its default, help and phase.

Defaults live here and nowhere else: the Python API, the CLI, the model-config flag
(`model.config.adapttoken = {...}`) and evaluation-harness argument strings are all parsed into this
one dataclass. Values may arrive as strings (CLI flags, lmms-eval `--model_args`), so `from_dict`
coerces them; unknown keys and out-of-range values raise `ConfigError` naming the key.

The schema is the one source of what each setting means: the CLI flags' help, the configuration table in
docs/config.md, the ablation's evidence-cache key (settings of `EVIDENCE_PHASES`), the ablation run ids
(which leave `storage` and `timing` settings out) and the settings integrations refuse (`pipeline_only`) are derived
from each field's metadata.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

SCORE_REDUCTIONS = ("max", "mean")
ENTROPY_MODES = ("first_token", "options", "generated")
POSITION_RULES = ("original", "transformers")
POSITIONS_1D = ("contiguous", "original")
FEATURE_STORES = ("cpu", "device")
FRAME_CACHES = ("auto", "memory", "disk", "off")
#: video decoders of the streaming pipeline (`FrameReader`); `auto` is torchcodec when it loads, else PyAV
VIDEO_BACKENDS = ("auto", "torchcodec", "pyav", "decord")


PHASES = ("sampling", "group pass", "selection", "positions", "storage", "timing")
"""What a setting changes: `sampling` the frames (streaming pipeline), `group pass` the per-group prefills
(scores, entropy), `selection` only the selector's decision over the evidence, `positions` the position ids
of the group passes and the final pass, `storage` where data waits (never a result), `timing` how the seconds
per stage are measured (never a result)."""

#: phases whose settings the group-pass evidence depends on (the ablation's evidence-cache key)
EVIDENCE_PHASES = ("sampling", "group pass", "positions")


#: integer settings must fit a 64-bit integer (they reach torch tensors); overselect is capped so that
#: ceil(overselect * budget) candidates is always a finite count
INT_LIMIT = 2**63 - 1
MAX_OVERSELECT = 1e6


def setting(default: Any, phase: str, help: str, *, pipeline_only: bool = False,
            choices: tuple[str, ...] | None = None) -> Any:
    """A config field with its help text and phase (`PHASES`); `pipeline_only`: read by the streaming
    `Pipeline` only (integrations that sample frames themselves refuse it); `choices`: the fixed values of a
    string setting (validated here, and the choices of its CLI flag)."""
    if phase not in PHASES:
        raise ValueError(f"phase {phase!r} is not one of {PHASES}")
    return field(default=default, metadata={"help": help, "phase": phase, "pipeline_only": pipeline_only,
                                            "choices": choices})


@dataclass
class AdaptTokenConfig:
    """Settings of the selector stage: each field carries its help text and the phase it affects.

    The table of every setting with its default, phase and help is docs/config.md (generated from
    these fields by `adapttoken list --markdown`); `settings_table()` returns it.

    A config is validated when it is made and cannot be changed afterwards: assigning a setting raises
    `ConfigError`, and `replace(**changes)` returns a validated copy.
    """

    selector: str = setting("adapttoken", "selection", "registered selector name (`adapttoken list` shows them)")
    budget: int = setting(7040, "selection", "total number of visual tokens that reach the final pass")
    frames_per_group: int = setting(
        64, "group pass", "frames per group, rounded down to whole frame units of the model (2 frames for "
        "Qwen2/2.5-VL)")
    fps: float = setting(1.0, "sampling", "frame sampling rate of the streaming pipeline, frames per second",
                         pipeline_only=True)
    max_frames: int = setting(1024, "sampling", "cap on sampled frames; frames are spread evenly over the video "
                              "when it is hit", pipeline_only=True)
    max_pixels: int | None = setting(None, "sampling", "pixels per frame after resizing at decode (None: the "
                                     "processor's own limit)", pipeline_only=True)
    scoring_layer: int | None = setting(
        None, "group pass", "decoder layer whose attention ranks tokens (None: the model's preset, else "
        "round(0.7 * num_layers))")
    score_reduce: str = setting("max", "group pass", "how a token's attention is reduced over heads and text "
                                "queries: their maximum or their mean", choices=SCORE_REDUCTIONS)
    early_layer: int = setting(2, "group pass", "the early-layer pass (`fastv`): decoder layer whose attention "
                               "from the last text token ranks the tokens; the pass stops after it (no entropy)")
    entropy_mode: str = setting(
        "first_token", "group pass", "`first_token` (full-vocabulary entropy at the answer position), `options` "
        "(entropy over the option letters only) or `generated` (mean of the least-certain entropy_top_fraction "
        "of up to entropy_max_new_tokens generated tokens)", choices=ENTROPY_MODES)
    entropy_max_new_tokens: int = setting(16, "group pass", "entropy_mode=generated: tokens generated per group")
    entropy_top_fraction: float = setting(0.1, "group pass", "entropy_mode=generated: fraction of the least "
                                          "certain tokens whose entropies are averaged")
    tau: float = setting(2.0, "selection", "softmax temperature of the budget allocation over negative entropies")
    theta: float = setting(0.2, "selection", "AdaptToken-Lite stops after the first group whose entropy is "
                           "<= theta (nats, on the model's own scale: `adapttoken calibrate` chooses it)")
    min_groups: int = setting(1, "selection", "AdaptToken-Lite visits at least this many groups")
    overselect: float = setting(1.1, "selection", "each group offers ceil(overselect * budget_g) candidates "
                                "before de-duplication")
    dedup: bool = setting(True, "selection", "remove near-duplicate tokens (same spatial cell, nearby frame "
                          "units) down to the budget")
    dedup_window: int = setting(8, "selection", "frame units within which two same-cell tokens count as "
                                "temporally close")
    vidcom2_temperature: float = setting(
        0.01, "selection", "`vidcom2`: softmax temperature over the frame units' uniqueness that scales their token "
        "shares (VidCom2's code default)")
    vidcom2_channel_fraction: float = setting(
        0.5, "selection", "`vidcom2`: fraction of feature channels, those of lowest variance over the video, that "
        "uniqueness is measured on (VidCom2's code default)")
    evs_threshold: float = setting(
        1.0, "selection", "`evs`: a token whose cosine similarity to its cell's reference (the last earlier token "
        "there that was not a duplicate) is above this is a duplicate and leaves the reference as it was; 1.0 "
        "compares every unit with the one before, as EVS does")
    fastvid_segment_threshold: float = setting(
        0.9, "selection", "`fastvid`: a new segment starts where adjacent frame units' mean features have cosine "
        "similarity below this (FastVID's tau)")
    fastvid_min_segments: int = setting(
        8, "selection", "`fastvid`: the least similar transitions also cut, so there are at least this many "
        "segments when the video has that many units (FastVID's c)")
    fastvid_anchor_step: int = setting(
        4, "selection", "`fastvid`: frame units per density window inside a segment (FastVID's anchor-frame step p)")
    fastvid_knn: int = setting(4, "selection", "`fastvid`: nearest neighbours that make a token's density (DPC-kNN)")
    framefusion_threshold: float = setting(
        0.6, "selection", "`framefusion`: a token whose cosine similarity to the same cell of the previous frame "
        "unit is at least this may be merged into it (FrameFusion's similarity lower bound)")
    position_rule: str = setting(
        "original", "positions", "`original` (text after a Qwen M-RoPE video starts after the largest video "
        "position, as the model was trained) or `transformers` (what the installed transformers computes)",
        choices=POSITION_RULES)
    positions_1d: str = setting(
        "contiguous", "positions", "position ids of the kept tokens in 1-D RoPE families (InternVL, LLaVA): "
        "`contiguous` (renumbered 0, 1, 2, ...) or `original` (full-sequence indices with gaps, always sent "
        "with an attention mask)", choices=POSITIONS_1D)
    feature_store: str = setting("cpu", "storage", "where the candidate features of the group passes wait for "
                                 "the final pass: `cpu` (bounded GPU memory) or `device` (no transfers)",
                                 choices=FEATURE_STORES)
    frame_cache: str = setting(
        "auto", "storage", "where the streaming pipeline keeps decoded frames: `memory` (in RAM, within "
        "`video_cache_mib`), `disk` (a temporary file of every sampled frame, read back without mapping it: flat "
        "RAM), `off` (nowhere: each request decodes its frames, nothing in the background) or `auto` (`memory` "
        "when the sampled frames fit `video_cache_mib`, else `disk`)", pipeline_only=True, choices=FRAME_CACHES)
    video_cache_mib: int = setting(
        2048, "storage", "MiB of RAM the streaming pipeline may hold decoded frames (`frame_cache=memory`) and "
        "encoded visual features in, reused by later questions on the same video; beyond it the least recently "
        "used are dropped and decoded or encoded again when needed", pipeline_only=True)
    decode_ahead: bool = setting(
        True, "storage", "decode the frames of the groups to come in a background thread while the current "
        "group runs (`memory` and `disk` frame caches): all groups in one time-ordered pass for selectors that "
        "visit every group, growing batches of groups for those that may stop early (Lite)", pipeline_only=True)
    sync_timing: bool = setting(
        False, "timing", "measure the seconds per stage (`Trace.seconds`) after waiting for the model's CUDA devices "
        "at each clock reading, so that each stage is charged with its own GPU work (without it, queued GPU work is "
        "charged to whichever stage waits for it first); costs a few synchronisations per group pass; no effect on "
        "a CPU model")
    seed: int = setting(0, "selection", "seed of the `random` selector; each question's draw mixes it with the "
                        "question's tokens and the video's content, so draws differ per question and repeat exactly")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name), _FIELD_TYPES[f.name]))
        self._validate()
        object.__setattr__(self, "_validated", True)

    def __setattr__(self, name: str, value: Any) -> None:
        # settings are checked once, when the config is made: a later change would skip the checks
        if self.__dict__.get("_validated"):
            raise ConfigError(f"AdaptTokenConfig cannot be changed once made: use config.replace({name}={value!r}), "
                              "which returns a validated copy")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise ConfigError(f"AdaptTokenConfig cannot be changed once made: {name} cannot be deleted")

    def _validate(self) -> None:
        from .registry import SELECTORS

        _check(self.selector in SELECTORS, "selector", self.selector, f"one of {SELECTORS.names()}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata["choices"] is not None:
                _check(value in f.metadata["choices"], f.name, value, f"one of {f.metadata['choices']}")
            if isinstance(value, int) and not isinstance(value, bool):
                _check(-INT_LIMIT <= value <= INT_LIMIT, f.name, value, f"an integer within +-{INT_LIMIT} (64 bits)")
        _check(self.budget > 0, "budget", self.budget, "an integer > 0 (tokens)")
        _check(self.frames_per_group >= 1, "frames_per_group", self.frames_per_group, "an integer >= 1")
        _check(self.fps > 0 and math.isfinite(self.fps), "fps", self.fps, "a finite number > 0")
        _check(self.max_frames >= 1, "max_frames", self.max_frames, "an integer >= 1")
        _check(self.max_pixels is None or self.max_pixels > 0, "max_pixels", self.max_pixels, "None or > 0")
        _check(self.scoring_layer is None or self.scoring_layer >= 0, "scoring_layer", self.scoring_layer,
               "None or a layer index >= 0")
        _check(self.early_layer >= 0, "early_layer", self.early_layer, "a layer index >= 0")
        _check(self.entropy_max_new_tokens >= 1, "entropy_max_new_tokens", self.entropy_max_new_tokens, ">= 1")
        _check(0 < self.entropy_top_fraction <= 1, "entropy_top_fraction", self.entropy_top_fraction, "in (0, 1]")
        _check(self.tau > 0 and math.isfinite(self.tau), "tau", self.tau, "a finite number > 0")
        _check(self.theta >= 0 and math.isfinite(self.theta), "theta", self.theta, "a finite number >= 0 (nats)")
        _check(self.min_groups >= 1, "min_groups", self.min_groups, "an integer >= 1")
        _check(1 <= self.overselect <= MAX_OVERSELECT, "overselect", self.overselect,
               f"a number in [1, {MAX_OVERSELECT:g}]")
        _check(self.dedup_window >= 0, "dedup_window", self.dedup_window, "an integer >= 0 (frame units)")
        _check(self.vidcom2_temperature > 0 and math.isfinite(self.vidcom2_temperature), "vidcom2_temperature",
               self.vidcom2_temperature, "a finite number > 0")
        _check(0 < self.vidcom2_channel_fraction <= 1, "vidcom2_channel_fraction", self.vidcom2_channel_fraction,
               "in (0, 1]")
        for name in ("evs_threshold", "fastvid_segment_threshold", "framefusion_threshold"):
            _check(-1 <= getattr(self, name) <= 1, name, getattr(self, name), "a cosine similarity in [-1, 1]")
        for name in ("fastvid_min_segments", "fastvid_anchor_step", "fastvid_knn"):
            _check(getattr(self, name) >= 1, name, getattr(self, name), "an integer >= 1")
        _check(self.video_cache_mib >= 0, "video_cache_mib", self.video_cache_mib, "an integer >= 0 (MiB)")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None = None, **overrides: Any) -> AdaptTokenConfig:
        """Build a config from a mapping whose values may be strings; unknown keys raise `ConfigError`.

        Keys may carry an `adapttoken_` prefix (as eval-harness model arguments do).
        """
        merged = {**(values or {}), **overrides}
        known = {f.name for f in dataclasses.fields(cls)}
        clean: dict[str, Any] = {}
        for key, value in merged.items():
            name = key[len("adapttoken_"):] if key.startswith("adapttoken_") else key
            name = name.replace("-", "_")
            if name not in known:
                raise ConfigError(f"unknown AdaptTokenConfig key {key!r}; known keys: {sorted(known)}")
            clean[name] = value
        return cls(**clean)

    @classmethod
    def coerce(cls, value: AdaptTokenConfig | dict[str, Any] | None) -> AdaptTokenConfig:
        """Accept a config, a dict of settings, or None (all defaults)."""
        if isinstance(value, cls):
            return value
        if value is None:
            return cls()
        if isinstance(value, dict):
            return cls.from_dict(value)
        raise ConfigError(f"expected an AdaptTokenConfig or a dict of settings, got {type(value).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every setting (JSON-serialisable); `from_dict(to_dict())` round-trips."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> AdaptTokenConfig:
        """A validated copy with some settings changed."""
        return type(self).from_dict({**self.to_dict(), **changes})


_FIELD_TYPES: dict[str, Any] = typing.get_type_hints(AdaptTokenConfig)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_NONE = {"none", "null", ""}


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is out of range: expected {expected}")


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Coerce `value` (possibly a string from a CLI or harness) to the field's annotated type."""
    args = typing.get_args(annotation)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), annotation) if args else annotation
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
        if optional:
            return None
        raise ConfigError(f"{key}=None is not allowed: expected a {base.__name__}")
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError
        if base is int:
            if isinstance(value, bool):
                raise ValueError
            number = float(value) if isinstance(value, str) else value
            if isinstance(number, float):
                if not number.is_integer():
                    raise ValueError
                return int(number)
            return int(number)
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base is str:
            if not isinstance(value, str):
                raise ValueError
            return value.strip()
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r} has the wrong type: expected {base.__name__}") from None
    return value


def setting_fields() -> list[dataclasses.Field]:
    """Every setting of `AdaptTokenConfig`, in declaration order."""
    return list(dataclasses.fields(AdaptTokenConfig))


def settings_in(*phases: str) -> tuple[str, ...]:
    """Names of the settings whose phase is one of `phases`."""
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise ValueError(f"unknown phases {sorted(unknown)}; phases: {PHASES}")
    return tuple(f.name for f in setting_fields() if f.metadata["phase"] in phases)


def pipeline_only_settings() -> tuple[str, ...]:
    """Settings read by the streaming `Pipeline` only (frame sampling and decoding)."""
    return tuple(f.name for f in setting_fields() if f.metadata["pipeline_only"])


def settings_table() -> str:
    """A Markdown table of every setting: name, default, phase, help (docs/config.md holds a copy)."""
    rows = ["| setting | default | phase | what it does |", "|---|---|---|---|"]
    for f in setting_fields():
        help_text = f.metadata["help"].replace("|", "\\|")
        if f.metadata["choices"] is not None:
            help_text += f"; one of {', '.join(f'`{c}`' for c in f.metadata['choices'])}"
        rows.append(f"| `{f.name}` | `{f.default!r}` | {f.metadata['phase']} | {help_text} |")
    return "\n".join(rows)
