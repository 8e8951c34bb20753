"""lmms-eval `--model_args` into an `AdaptTokenConfig` plus the family's own arguments.

lmms-eval's parser (`utils.simple_parse_args_string`) hands values over half-typed: `-1` arrives as
`-1.0`, `None` as the string `'None'`, lists as strings, `true` as `True`. `AdaptTokenConfig.from_dict`
coerces such values and raises `ConfigError` naming the key, so every `adapttoken_*` argument goes
through it. A family argument with a config counterpart (`max_num_frames` -> `max_frames`) is the
same setting under its lmms-eval name; giving both with different values is an error, and so is any
argument the model class does not use (lmms-eval would otherwise let a typo pass silently).

`rope_scaling=yarn,rope_factor=4` (`rope_override`) replaces the checkpoint's rotary-embedding type with YaRN
in the loaded config, the override the Qwen2.5-VL model card describes as an edit of `config.json`: a
comma-separated `--model_args` string cannot carry that JSON object, so it is spelt as three arguments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...config import AdaptTokenConfig
from ...errors import ConfigError

PREFIX = "adapttoken_"


@dataclass
class ModelArgs:
    """What a model class gets from its `--model_args` beyond the arguments it names itself.

    Attributes:
        config: the validated AdaptToken settings.
        processor_kwargs: family arguments passed to `AutoProcessor.from_pretrained` (e.g. `max_pixels`).
    """

    config: AdaptTokenConfig
    processor_kwargs: dict[str, Any]


def parse_model_args(
    model_id: str,
    kwargs: Mapping[str, Any],
    config_aliases: Mapping[str, str] | None = None,
    processor_args: Sequence[str] = (),
) -> ModelArgs:
    """Split the remaining `--model_args` of `model_id` into AdaptToken settings and processor arguments.

    Args:
        model_id: the lmms-eval id, for error messages.
        kwargs: the arguments the model class's own signature did not take.
        config_aliases: family argument name -> AdaptTokenConfig key (`{"max_num_frames": "max_frames"}`).
        processor_args: family arguments forwarded to the processor.

    Raises:
        ConfigError: an unknown or invalid `adapttoken_*` key, a family alias that contradicts its
            `adapttoken_*` twin, or an argument this model does not accept (each message names the key).
    """
    settings = {key: value for key, value in kwargs.items() if key.startswith(PREFIX)}
    rest = {key: value for key, value in kwargs.items() if not key.startswith(PREFIX)}
    for family_name, config_key in (config_aliases or {}).items():
        if family_name not in rest:
            continue
        value = rest.pop(family_name)
        twin = PREFIX + config_key
        if twin in settings and _coerced(config_key, settings[twin]) != _coerced(config_key, value):
            raise ConfigError(f"{family_name}={value!r} contradicts {twin}={settings[twin]!r}; give one of them")
        settings.setdefault(twin, value)
    processor_kwargs = {name: rest.pop(name) for name in processor_args if name in rest}
    if rest:
        accepted = sorted([*(config_aliases or {}), *processor_args])
        raise ConfigError(f"{model_id} does not accept the model argument(s) {sorted(rest)}; besides its named "
                          f"arguments it takes {accepted} and adapttoken_* keys")
    return ModelArgs(AdaptTokenConfig.from_dict(settings), processor_kwargs)


def _coerced(key: str, value: Any) -> Any:
    """`value` as the config stores it for `key` (so `4096`, `4096.0` and `'4096'` compare equal)."""
    return getattr(AdaptTokenConfig.from_dict({key: value}), key)


#: rotary-embedding scalings `rope_scaling` accepts (transformers' `rope_type` names)
ROPE_SCALINGS = ("yarn",)


@dataclass(frozen=True)
class RopeOverride:
    """A rope scaling that replaces the checkpoint's own in its text model's config (`rope_parameters`).

    Attributes:
        rope_type: "yarn".
        factor: the context extension factor (>= 1).
        original_max_position_embeddings: the context the model was trained for; None: the checkpoint's
            `max_position_embeddings` (what transformers takes when the key is missing).
    """

    rope_type: str
    factor: float
    original_max_position_embeddings: int | None = None

    def apply(self, config: Any) -> None:
        """Set the override on `config`'s text config, keeping its other rope parameters (`rope_theta`, Qwen's
        `mrope_section`)."""
        text = config.get_text_config()
        params = {key: value for key, value in (text.rope_parameters or {}).items() if key != "type"}
        original = self.original_max_position_embeddings or text.max_position_embeddings
        params.update(rope_type=self.rope_type, factor=self.factor, original_max_position_embeddings=original)
        text.rope_parameters = params


def rope_override(rope_scaling: Any, rope_factor: Any,
                  rope_original_max_position_embeddings: Any) -> RopeOverride | None:
    """The `rope_scaling`, `rope_factor` and `rope_original_max_position_embeddings` model arguments, validated
    (lmms-eval hands them over as strings or numbers; `None` as the string 'None').

    Raises:
        ConfigError: an unknown scaling, a factor or length given without a scaling, a scaling without a
            factor, a factor below 1, a length that is not a positive integer (each message names the argument).
    """
    scaling = _absent(rope_scaling)
    factor, original = _absent(rope_factor), _absent(rope_original_max_position_embeddings)
    if scaling is None:
        for name, value in (("rope_factor", factor), ("rope_original_max_position_embeddings", original)):
            if value is not None:
                raise ConfigError(f"{name}={value!r} has no effect without rope_scaling: add rope_scaling=yarn")
        return None
    scaling = str(scaling).strip().lower()
    if scaling not in ROPE_SCALINGS:
        raise ConfigError(f"rope_scaling={rope_scaling!r} is not supported: expected one of {ROPE_SCALINGS} (or "
                          "leave it out for the checkpoint's own rotary embedding)")
    if factor is None:
        raise ConfigError(f"rope_scaling={scaling} needs rope_factor, the context extension factor (the "
                          "Qwen2.5-VL model card's YaRN setting: rope_factor=4)")
    try:
        factor_value = float(factor)
    except (TypeError, ValueError):
        factor_value = math.nan
    if isinstance(factor, bool) or not 1 <= factor_value < math.inf:
        raise ConfigError(f"rope_factor={factor!r} is out of range: expected a number >= 1")
    return RopeOverride(scaling, factor_value, None if original is None else _positive_int(
        "rope_original_max_position_embeddings", original))


def _absent(value: Any) -> Any:
    """None for a missing argument (lmms-eval passes `None` as the string 'None')."""
    return None if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "")) else value


def _positive_int(name: str, value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (number.is_integer() and number >= 1):
        raise ConfigError(f"{name}={value!r} is out of range: expected a positive integer (tokens)")
    return int(number)
