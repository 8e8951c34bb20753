"""Switch the selector stage on and off on one LLaVA-NeXT codebase model instance.

`enable` binds a `generate` wrapper (and a `forward` guard) to the instance, never the class; `disable`
removes exactly those attributes. A wrapped `generate(inputs, images=[video], modalities=["video"], ...)`
runs the group passes on the fork's decoder, selects, and hands the kept tokens' `inputs_embeds` to the
same parent `generate` the fork's own method would call; every other call passes through untouched.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

import torch

from ... import instance_attributes
from ...config import POSITIONS_1D, AdaptTokenConfig
from ...errors import AdaptTokenError, ConfigError, UnsupportedInputError
from ...stage import Query, Stage
from ...video.identity import video_key_of_tensor
from .adapter import LlavaCodebaseAdapter
from .structure import check_llava_model, language_model_generate, package_of

CONFIG_KEY = "adapttoken"
_WRAPPED = ("generate", "forward")


class LanguageModelPass:
    """What the stage calls `model`: the fork's decoder and LM head on `inputs_embeds`, without its
    multimodal preparation (and logits only for the last `logits_to_keep` rows), and the parent `generate`."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.generate = language_model_generate(model)

    def __call__(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 logits_to_keep: int = 0, use_cache: bool = False) -> Any:
        from transformers.modeling_outputs import CausalLMOutputWithPast

        hidden = self.model.get_model()(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                        use_cache=use_cache, return_dict=True).last_hidden_state
        return CausalLMOutputWithPast(logits=self.model.get_output_embeddings()(hidden[:, -logits_to_keep:]))


@dataclass
class _State:
    stage: Stage  # on the LanguageModelPass, with the LlavaCodebaseAdapter
    saved: dict[str, Any]
    layout_checked: bool = False

    @property
    def config(self) -> AdaptTokenConfig:
        return self.stage.config

    @property
    def adapter(self) -> LlavaCodebaseAdapter:
        return self.stage.adapter

    @property
    def language_model(self) -> LanguageModelPass:
        return self.stage.model


def enable(model: Any, config: AdaptTokenConfig | dict[str, Any] | None = None, package: str | None = None) -> Any:
    """Install the selector stage on a LLaVA-NeXT codebase model (in place) and return it.

    Args:
        model: an instance of the fork's model class (`LlavaQwenForCausalLM` or any class with
            `structure.REQUIRED_METHODS`).
        config: an `AdaptTokenConfig`, a dict of settings, or None to read `model.config.adapttoken`
            (a dict, or True for the defaults).
        package: the fork's package name (`llava`, `llavaction`, ...); default: the model class's package.
    Raises:
        UnsupportedModelError: the model lacks the structure. ConfigError: bad settings. Nothing is
        installed when anything raises.
    """
    check_llava_model(model)
    if config is None:
        config = _configured(model)
    config = AdaptTokenConfig.coerce(None if config is True else config)
    if config.positions_1d != POSITIONS_1D[0]:
        raise ConfigError(f"positions_1d={config.positions_1d!r} is not supported by the LLaVA-NeXT integration: "
                          f"the fork numbers positions contiguously (use {POSITIONS_1D[0]!r})")
    adapter = LlavaCodebaseAdapter(model, package or package_of(model), config.position_rule)
    stage = Stage(LanguageModelPass(model), adapter, config)
    if is_enabled(model):
        disable(model)
    saved = instance_attributes.save(model, _WRAPPED)
    model.__dict__["_adapttoken_llava_state"] = _State(stage, saved)
    for name, wrapper in (("generate", _generate), ("forward", _forward)):
        original = instance_attributes.original(model, name, saved)
        # The wrapper carries the original's signature: transformers' generate inspects `forward`'s
        # parameters (e.g. whether it takes attention_mask) to decide what it passes.
        model.__dict__[name] = functools.update_wrapper(functools.partial(wrapper, model, original), original)
    model.__dict__["adapttoken_trace"] = None
    return model


def apply_if_configured(model: Any, package: str | None = None) -> Any:
    """`enable(model)` when `model.config.adapttoken` is set (and not False/None); otherwise leave the model
    exactly as it is. The one call a fork's loader (or the patch in `patches/`) makes after loading."""
    if _configured(model) in (None, False):
        return model
    return enable(model, package=package)


def disable(model: Any) -> Any:
    """Remove the selector stage: the instance is exactly as before `enable`."""
    instance_attributes.uninstall(model, "_adapttoken_llava_state")
    return model


def is_enabled(model: Any) -> bool:
    return "_adapttoken_llava_state" in model.__dict__


def _configured(model: Any) -> Any:
    return getattr(getattr(model, "config", None), CONFIG_KEY, None)




def _bind(method: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(named arguments, the **kwargs part) of a call to `method`, by its own signature."""
    signature = inspect.signature(method)
    bound = signature.bind(*args, **kwargs)
    var_keyword = next((p.name for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD), None)
    named = dict(bound.arguments)
    rest = dict(named.pop(var_keyword, {})) if var_keyword else {}
    return named, rest


def _is_video_call(named: dict[str, Any], rest: dict[str, Any]) -> bool:
    images = named.get("images", rest.get("images"))
    modalities = named.get("modalities", rest.get("modalities"))
    modalities = [modalities] if isinstance(modalities, str) else list(modalities or [])
    return images is not None and "video" in modalities


def _generate(model: Any, original: Any, *args: Any, **kwargs: Any) -> Any:
    named, rest = _bind(original, args, kwargs)
    if not _is_video_call(named, rest):
        kwargs.pop("adapttoken_option_ids", None)
        return original(*args, **kwargs)
    state: _State = model.__dict__["_adapttoken_llava_state"]
    if "inputs_embeds" in rest:
        raise UnsupportedInputError("inputs_embeds is not supported with a video: pass the prompt's input_ids")
    if rest.pop("position_ids", None) is not None:
        raise UnsupportedInputError("position_ids are not supported with the selector stage (positions are "
                                    "renumbered over the kept tokens)")
    option_ids = rest.pop("adapttoken_option_ids", None)
    state.stage.check_options(option_ids)
    attention_mask = rest.pop("attention_mask", None)
    adapter = state.adapter
    prompt, layout, frames = adapter.split_inputs({
        "input_ids": named.get("inputs", rest.pop("input_ids", None)), "attention_mask": attention_mask,
        "images": named.get("images"), "modalities": named.get("modalities"),
    })
    if not state.layout_checked:
        adapter.check_against_fork(prompt, frames)
        state.layout_checked = True
    key = video_key_of_tensor(frames) if state.stage.needs_video_key else None
    result = state.stage.run(Query(prompt, layout, lambda units: adapter.unit_pixels(frames, layout, units),
                                   option_ids, key))
    model.__dict__["adapttoken_trace"] = result.trace
    final = adapter.model_inputs(prompt, layout, result.token_ids, result.features)
    embeds = final["inputs_embeds"]
    # As the fork: a mask of ones in the caller's dtype when the caller passed one, else none.
    mask = None if attention_mask is None else final["attention_mask"].to(attention_mask.dtype)
    start = state.stage.clock.now()
    out = state.language_model.generate(position_ids=None, attention_mask=mask, inputs_embeds=embeds, **rest)
    result.trace.add_seconds("final", state.stage.clock.now() - start)
    return out


def _forward(model: Any, original: Any, *args: Any, **kwargs: Any) -> Any:
    named, rest = _bind(original, args, kwargs)
    if _is_video_call(named, rest):
        raise UnsupportedInputError("forward() with a video is not selected by the LLaVA-NeXT integration: "
                                    "call generate(), or adapttoken_plugin.integrations.llava.disable(model) first")
    return original(*args, **kwargs)


def config_of(model: Any) -> AdaptTokenConfig:
    """The config the model was enabled with."""
    state = model.__dict__.get("_adapttoken_llava_state")
    if state is None:
        raise AdaptTokenError("the selector stage is not enabled on this model")
    return state.config
