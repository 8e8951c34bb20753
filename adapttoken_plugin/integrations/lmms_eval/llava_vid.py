"""lmms-eval's `llava_vid` (LLaVA-Video on a LLaVA-NeXT codebase fork) with AdaptToken.

    lmms-eval --model adapttoken_llava_vid --model_args pretrained=lmms-lab/LLaVA-Video-7B-Qwen2,\
conv_template=qwen_1_5,max_frames_num=256,mm_spatial_pool_mode=average,adapttoken_budget=6720,\
adapttoken_llava_package=llavaction --tasks videomme_local ...

Every `adapttoken_*` argument is popped and parsed into an `AdaptTokenConfig` (strings coerced; an unknown
key raises `ConfigError` naming it) before `llava_vid`, which refuses unknown arguments, sees the rest.
After `llava_vid` has loaded the model, `integrations.llava.enable` switches the selector stage on.
`llava_vid` decodes the sampled frames of each request's video (`load_video`, decord); the last video's
frames are kept for the next request on the same file, as VideoMME's three questions per video arrive one
after another.

`adapttoken_llava_package` names the fork (default `llava`). lmms-eval's `llava_vid` module imports
`llava.*` at its top, so for another name the fork's modules are registered under `llava` first
(`structure.alias_package`), and the `llava_vid` subclass is built then: `AdaptTokenLlavaVid(...)`
returns an instance of `AdaptTokenLlavaVid` bound to `LlavaVid` for that package.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from lmms_eval.api.model import lmms

from ...config import AdaptTokenConfig, pipeline_only_settings
from ...errors import ConfigError
from ..llava import enable
from ..llava.structure import alias_package

PREFIX = "adapttoken_"
PACKAGE_ARG = "adapttoken_llava_package"
UPSTREAM_PACKAGE = "llava"
#: the modules lmms-eval 0.7.3's `models/simple/llava_vid.py` imports from `llava`
LLAVA_VID_IMPORTS = ("constants", "conversation", "mm_utils", "model.builder", "model.language_model.llava_llama",
                     "model.language_model.llava_qwen")
LLAVA_VID_MODULE = "lmms_eval.models.simple.llava_vid"
#: the `adapttoken` model's rotary-embedding arguments, which llava_vid has no way to apply
ROPE_ARGUMENTS = ("rope_scaling", "rope_factor", "rope_original_max_position_embeddings")
#: llava_vid's own argument for a setting it refuses (the refused settings: `pipeline_only` in the config schema)
OWN_ARGUMENT = {"fps": "video_fps", "max_frames": "max_frames_num"}


def split_model_args(kwargs: dict[str, Any]) -> tuple[AdaptTokenConfig, str, dict[str, Any]]:
    """`--model_args` -> (AdaptToken settings, the fork's package name, the arguments left for `llava_vid`)."""
    own = {key: value for key, value in kwargs.items() if key.startswith(PREFIX)}
    rest = {key: value for key, value in kwargs.items() if not key.startswith(PREFIX)}
    package = str(own.pop(PACKAGE_ARG, UPSTREAM_PACKAGE)).strip()
    for name in pipeline_only_settings():  # the streaming Pipeline's: llava_vid samples frames itself
        if PREFIX + name in own:
            hint = f"; use llava_vid's own {OWN_ARGUMENT[name]}" if name in OWN_ARGUMENT else ""
            raise ConfigError(f"{PREFIX + name} has no effect with adapttoken_llava_vid: llava_vid samples and "
                              f"preprocesses the frames itself{hint}")
    rope = sorted(key for key in rest if key in ROPE_ARGUMENTS)
    if rope:
        raise ConfigError(f"{', '.join(rope)}: the YaRN model arguments are the `adapttoken` model's (transformers "
                          "checkpoints); llava_vid loads the fork's checkpoint itself, so set `rope_scaling` in that "
                          "checkpoint's config.json instead")
    return AdaptTokenConfig.from_dict(own), package, rest


_BOUND: dict[str, type] = {}


def bound_class(package: str) -> type:
    """`AdaptTokenLlavaVid` on lmms-eval's `LlavaVid`, with `llava` standing for `package` (built once)."""
    if package not in _BOUND:
        alias_package(package, UPSTREAM_PACKAGE, LLAVA_VID_IMPORTS)
        base = importlib.import_module(LLAVA_VID_MODULE).LlavaVid
        _BOUND[package] = type("AdaptTokenLlavaVid", (AdaptTokenLlavaVid, base), {"__module__": __name__})
    return _BOUND[package]


class AdaptTokenLlavaVid(lmms):
    """lmms-eval id `adapttoken_llava_vid`: `llava_vid` plus `adapttoken_*` model arguments."""

    def __new__(cls, **kwargs: Any) -> AdaptTokenLlavaVid:
        if cls is AdaptTokenLlavaVid:
            cls = bound_class(split_model_args(kwargs)[1])
        return super().__new__(cls)

    def __init__(self, **kwargs: Any) -> None:
        config, package, rest = split_model_args(kwargs)  # bad settings fail before the model is loaded
        self._last_video: tuple[tuple[Any, ...], Any] | None = None
        super().__init__(**rest)
        self.adapttoken_config = config
        enable(self.model, config, package=package)

    def load_video(self, video_path: str, max_frames_num: int, fps: float, force_sample: bool = False) -> Any:
        """`llava_vid.load_video` (frames (F, H, W, 3) uint8, their times, the duration), read once per video:
        the result for the last file (same path, size and modification time, same sampling) is returned again,
        its frames read-only (llava_vid's preprocessing copies them). Holds no more than one request needs."""
        stat = os.stat(video_path)
        key = (os.fspath(video_path), stat.st_size, stat.st_mtime_ns, max_frames_num, fps, force_sample)
        if self._last_video is None or self._last_video[0] != key:
            self._last_video = None  # the previous video's frames go before this one's are decoded
            loaded = super().load_video(video_path, max_frames_num, fps, force_sample)
            if hasattr(loaded[0], "flags"):
                loaded[0].flags.writeable = False
            self._last_video = (key, loaded)
        return self._last_video[1]
