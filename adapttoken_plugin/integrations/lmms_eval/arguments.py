"""lmms-eval `--model_args` into an `AdaptTokenConfig` plus the family's own arguments.

lmms-eval's parser (`utils.simple_parse_args_string`) hands values over half-typed: `-1` arrives as
`-1.0`, `None` as the string `'None'`, lists as strings, `true` as `True`. `AdaptTokenConfig.from_dict`
coerces such values and raises `ConfigError` naming the key, so every `adapttoken_*` argument goes
through it. A family argument with a config counterpart (`max_num_frames` -> `max_frames`) is the
same setting under its lmms-eval name; giving both with different values is an error, and so is any
argument the model class does not use (lmms-eval would otherwise let a typo pass silently).
"""

from __future__ import annotations

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
