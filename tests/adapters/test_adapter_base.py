"""`ModelAdapter` is abstract: its abstract methods are exactly what a family implements, and what a family can do
is declared in class attributes (read by the Pipeline and the docs tables), never detected from overrides."""

from __future__ import annotations

import inspect

import pytest

import adapttoken_plugin as at
from adapttoken_plugin.adapters.base import ModelAdapter
from adapttoken_plugin.errors import ConfigError, UnsupportedModelError

CORE = {"split_inputs", "unit_pixels", "encode", "model_inputs"}
STREAMING = ("frames_to_pixels", "frame_size", "layout_for_frames")


def test_the_abstract_methods_are_the_family_contract():
    assert ModelAdapter.__abstractmethods__ == CORE
    with pytest.raises(TypeError, match="abstract"):
        ModelAdapter(object())

    class Partial(ModelAdapter):  # a family that forgot model_inputs cannot be made
        def split_inputs(self, inputs): ...
        def unit_pixels(self, pixels, layout, units): ...
        def encode(self, pixel_inputs): ...

    with pytest.raises(TypeError, match="model_inputs"):
        Partial(object())


@pytest.mark.parametrize("name", at.ADAPTERS.names())
def test_a_streaming_family_implements_the_streaming_methods(name):
    cls = at.ADAPTERS.get(name)
    overridden = {m for m in STREAMING if getattr(cls, m) is not getattr(ModelAdapter, m)}
    assert overridden == (set(STREAMING) if cls.supports_streaming else set())


def test_a_family_without_streaming_says_so():
    class NoStreaming(ModelAdapter):
        supports_streaming = False

        def split_inputs(self, inputs): ...
        def unit_pixels(self, pixels, layout, units): ...
        def encode(self, pixel_inputs): ...
        def model_inputs(self, prompt, layout, token_ids, features): ...

    with pytest.raises(UnsupportedModelError, match="NoStreaming does not support the streaming pipeline"):
        NoStreaming(object()).frame_size(None, 10, 10, None, 4)


@pytest.mark.parametrize("name", at.ADAPTERS.names())
def test_capabilities_are_declared_and_model_inputs_has_one_signature(name):
    cls = at.ADAPTERS.get(name)
    for attribute in ("frames_per_unit", "video_input_key", "trailing_video_tokens", "has_unit_text",
                      "supports_streaming"):
        assert any(attribute in vars(k) for k in cls.__mro__), attribute
    assert list(inspect.signature(cls.model_inputs).parameters) == ["self", "prompt", "layout", "token_ids",
                                                                    "features"]
    # families with per-frame text build their own prompt; the others use the base one
    assert (cls.video_prompt is not ModelAdapter.video_prompt) == cls.has_unit_text


def test_position_settings_are_fixed_when_the_adapter_is_made():
    from fixtures.tiny import qwen2_5_vl

    model = qwen2_5_vl()
    adapter = at.adapter_for(model, at.AdaptTokenConfig(position_rule="transformers", positions_1d="original"))
    assert (adapter.position_rule, adapter.positions_1d) == ("transformers", "original")
    assert (at.adapter_for(model).position_rule, at.adapter_for(model).positions_1d) == ("original", "contiguous")
    with pytest.raises(ConfigError, match="position_rule='sideways'"):
        type(adapter)(model, "sideways")
    with pytest.raises(ConfigError, match="make it with adapter_for"):  # a Stage refuses a mismatched adapter
        at.Stage(model, adapter, at.AdaptTokenConfig())
