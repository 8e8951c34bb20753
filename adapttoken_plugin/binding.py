"""Switch the selector stage on and off on one model instance.

`enable` binds wrappers of `generate` and `forward` to the instance (never the class, so other
instances and accelerate's per-instance device hooks are untouched); `disable` removes exactly
those attributes, restoring whatever the instance had before. A wrapped call that carries a video
(the adapter's `video_input_key`: `pixel_values_videos`; `pixel_values` for InternVL, whose processor
passes frames as images) runs the selector stage and then the model's own method on the kept tokens;
any other call passes straight through.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch

from . import instance_attributes
from .adapters.base import POSITIONS_1D_CONTIGUOUS, ModelAdapter, adapter_for
from .config import AdaptTokenConfig
from .distributed import attach_native, check_ranks_agree
from .errors import AdaptTokenError, UnsupportedInputError
from .stage import Query, Stage
from .video.identity import video_key_of_tensor

_WRAPPED = ("generate", "forward")


@dataclass
class _State:
    stage: Stage
    saved: dict[str, Any]

    @property
    def config(self) -> AdaptTokenConfig:
        return self.stage.config

    @property
    def adapter(self) -> ModelAdapter:
        return self.stage.adapter


def enable(model: Any, config: AdaptTokenConfig | dict[str, Any] | None = None) -> Any:
    """Install the selector stage on `model` (in place) and return it.

    Args:
        model: a supported transformers model instance (`adapttoken list` shows the classes).
        config: an `AdaptTokenConfig`, a dict of settings, or None to read `model.config.adapttoken`
            (a dict) and fall back to the defaults.
    Raises:
        UnsupportedModelError: no adapter for the model's class. ConfigError: bad settings (for example
        a scoring layer deeper than the model). Nothing is installed when anything raises.
    """
    if config is None:
        config = getattr(getattr(model, "config", None), "adapttoken", None)
    config = AdaptTokenConfig.coerce(config)
    stage = Stage(model, adapter_for(model, config), config)
    attach_native(model)  # a model split by transformers' own tensor parallelism: scores reduced over its ranks
    if is_enabled(model):
        disable(model)
    saved = instance_attributes.save(model, _WRAPPED)
    model.__dict__["_adapttoken_state"] = _State(stage, saved)
    for name, wrapper in (("generate", _generate), ("forward", _forward)):
        original = instance_attributes.original(model, name, saved)
        # the wrapper carries the original's signature: transformers' generate inspects `forward`'s
        # parameters (`logits_to_keep`: else the final prefill computes logits for every position)
        model.__dict__[name] = functools.update_wrapper(functools.partial(wrapper, model, original), original)
    model.__dict__["adapttoken_trace"] = None
    return model


def disable(model: Any) -> Any:
    """Remove the selector stage: the instance is exactly as before `enable`."""
    instance_attributes.uninstall(model, "_adapttoken_state")
    return model


def is_enabled(model: Any) -> bool:
    return "_adapttoken_state" in model.__dict__


def config_of(model: Any) -> AdaptTokenConfig:
    """The config the model was enabled with."""
    state = model.__dict__.get("_adapttoken_state")
    if state is None:
        raise AdaptTokenError("the selector stage is not enabled on this model; call adapttoken_plugin.enable")
    return state.config


def _select(model: Any, kwargs: dict[str, Any]) -> tuple[dict[str, Any], torch.Tensor]:
    """Run the stage on a call's video inputs; returns the new keyword arguments and the caller's input_ids."""
    state: _State = model.__dict__["_adapttoken_state"]
    option_ids = kwargs.pop("adapttoken_option_ids", None)
    state.stage.check_options(option_ids)
    original_ids = kwargs.get("input_ids")
    prompt, layout, pixels = state.adapter.split_inputs(kwargs)
    key = video_key_of_tensor(pixels) if state.stage.needs_video_key else None
    result = state.stage.run(Query(prompt, layout, lambda units: state.adapter.unit_pixels(pixels, layout, units),
                                   option_ids, key))
    model.__dict__["adapttoken_trace"] = result.trace
    kwargs.update(state.adapter.model_inputs(prompt, layout, result.token_ids, result.features))
    return kwargs, original_ids


def _selected_call(model: Any, original: Any, name: str, args: tuple, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Run `original` on the kept tokens when the call carries a video; returns (output, caller's input_ids),
    or (output, None) for a call without a video, passed through untouched."""
    if kwargs.get(model.__dict__["_adapttoken_state"].adapter.video_input_key) is None:
        kwargs.pop("adapttoken_option_ids", None)
        return original(*args, **kwargs), None
    if len(args) > 1:
        raise UnsupportedInputError(f"pass {name}'s arguments by keyword when the selector stage is enabled")
    if args:
        kwargs["input_ids"] = args[0]
    if kwargs.get("labels") is not None:
        raise UnsupportedInputError("labels are not supported with the selector stage (the sequence is shortened)")
    if name == "generate":
        config = kwargs.get("generation_config") or model.generation_config
        sequences = kwargs.get("num_return_sequences", getattr(config, "num_return_sequences", 1)) or 1
        if sequences != 1:  # checked before the selection: every other part of it is batch 1
            raise UnsupportedInputError(f"num_return_sequences={sequences}: the selector stage returns one sequence "
                                        "per prompt; call generate once per sequence")
    kwargs, original_ids = _select(model, kwargs)
    clock = model.__dict__["_adapttoken_state"].stage.clock
    start = clock.now()
    out = original(**kwargs)
    model.adapttoken_trace.add_seconds("final", clock.now() - start)
    return out, (original_ids, kwargs["input_ids"].shape[1])


def _generate(model: Any, original: Any, *args: Any, **kwargs: Any) -> Any:
    out, selected = _selected_call(model, original, "generate", args, kwargs)
    if selected is None:
        return out
    # Callers slice the answer off by their own prompt length: give them their prompt back in front.
    original_ids, prompt_len = selected
    check_ranks_agree(model, "the answer", out if isinstance(out, torch.Tensor) else out.sequences)
    if isinstance(out, torch.Tensor):
        return torch.cat([original_ids.to(out.device), out[:, prompt_len:]], dim=1)
    out.sequences = torch.cat([original_ids.to(out.sequences.device), out.sequences[:, prompt_len:]], dim=1)
    return out


def _forward(model: Any, original: Any, *args: Any, **kwargs: Any) -> Any:
    state: _State = model.__dict__["_adapttoken_state"]
    if (state.config.positions_1d != POSITIONS_1D_CONTIGUOUS and kwargs.get("position_ids") is not None
            and kwargs.get("attention_mask") is None):
        # generate() drops an all-ones mask, and without a mask transformers reads gapped positions (the
        # kept tokens' full-sequence indices) as packed sequences that must not attend to each other
        kwargs["attention_mask"] = _ones_mask(args, kwargs)
    return _selected_call(model, original, "forward", args, kwargs)[0]


def _ones_mask(args: tuple, kwargs: dict[str, Any]) -> torch.Tensor:
    """(1, cached + new tokens) all-ones attention mask for one forward call of batch 1."""
    tokens = kwargs.get("input_ids", args[0] if args else None)
    new = tokens.shape[1] if tokens is not None else kwargs["inputs_embeds"].shape[1]
    cache = kwargs.get("cache", kwargs.get("past_key_values"))
    cached = cache.get_seq_length() if cache is not None else 0
    return torch.ones(1, cached + new, dtype=torch.long, device=kwargs["position_ids"].device)
