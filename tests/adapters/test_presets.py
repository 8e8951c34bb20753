"""Per-checkpoint presets: looked up from model.config, used for the default scoring layer only."""

from __future__ import annotations

import pytest

import adapttoken_plugin as at
from adapttoken_plugin.adapters.base import adapter_for
from adapttoken_plugin.presets import PRESETS, ModelPreset, checkpoint_key, preset_for
from adapttoken_plugin.stage import resolve_scoring_layer
from fixtures.families import FAMILIES


@pytest.mark.parametrize("name,key", [
    ("Qwen/Qwen2.5-VL-7B-Instruct", "qwen2.5-vl-7b-instruct"),
    ("/models/Qwen2.5-VL-7B-Instruct/", "qwen2.5-vl-7b-instruct"),
    ("llava-hf/LLaVA-Video-7B-Qwen2-hf", "llava-video-7b-qwen2"),
    ("C:\\ckpt\\InternVL2_5-8B", "internvl2_5-8b"),
    ("", None),
    (None, None),
])
def test_checkpoint_names_map_to_table_keys(name, key):
    assert checkpoint_key(name) == key


def test_the_table_holds_flexselects_values():
    assert {k: (p.scoring_layer, p.num_layers, p.budget, p.frames_per_group) for k, p in PRESETS.items()} == {
        "qwen2.5-vl-7b-instruct": (20, 28, 7040, 64),
        "internvl2_5-8b": (15, 32, 8256, 64),
        "llava-video-7b-qwen2": (19, 28, 6720, 64),
        "needle-toy": (1, 4, 128, 64),
        "tasks-toy": (1, 4, 128, 32),
    }


@pytest.fixture(scope="module")
def model():
    return FAMILIES["llava_onevision"].model()  # 3 decoder layers


def test_unknown_checkpoints_fall_back_to_seven_tenths_of_the_depth(model):
    assert preset_for(model) is None
    assert adapter_for(model).default_scoring_layer() == 2  # round(0.7 * 3)


def test_a_known_checkpoint_of_its_depth_uses_the_preset_and_user_settings_win(model, monkeypatch):
    monkeypatch.setitem(PRESETS, "tiny-llava-video",
                        ModelPreset(num_layers=3, scoring_layer=1, frames_per_group=64, budget=6720))
    monkeypatch.setattr(model.config, "_name_or_path", "someone/Tiny-LLaVA-Video-hf")
    adapter = adapter_for(model)
    assert adapter.default_scoring_layer() == 1
    assert resolve_scoring_layer(adapter, at.AdaptTokenConfig()) == 1
    assert resolve_scoring_layer(adapter, at.AdaptTokenConfig(scoring_layer=0)) == 0
    assert at.AdaptTokenConfig().budget == 7040 and at.AdaptTokenConfig().frames_per_group == 64  # defaults unchanged


def test_a_preset_for_another_depth_is_not_applied(model, monkeypatch):
    monkeypatch.setattr(model.config, "_name_or_path", "lmms-lab/LLaVA-Video-7B-Qwen2")  # 28 layers, not 3
    assert preset_for(model) is PRESETS["llava-video-7b-qwen2"]
    assert adapter_for(model).default_scoring_layer() == 2
