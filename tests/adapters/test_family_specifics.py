"""What one family does differently from the contract (the contract itself: `test_contract.py`)."""

from __future__ import annotations

import pytest
import torch
from families import FAMILIES

import adapttoken_plugin as at
from adapttoken_plugin.adapters.base import adapter_for


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(name):
        if name not in cache:
            family = FAMILIES[name]
            cache[name] = family, family.model(), family.build_processor()
        return cache[name]

    return get


@pytest.mark.parametrize("seconds", [0.5, 3.0])
def test_qwen2_vl_temporal_positions_are_the_pair_index_whatever_the_timing(built, seconds):
    family, model, processor = built("qwen2_vl")
    inputs = family.inputs(processor)
    reference = model.model.get_rope_index(inputs["input_ids"], inputs["mm_token_type_ids"],
                                           video_grid_thw=inputs["video_grid_thw"])[0]
    adapter = adapter_for(model)
    prompt, layout, _ = adapter.split_inputs({**inputs, "second_per_grid_ts": torch.tensor([seconds])})
    assert layout.time_interval == 1.0
    ours = adapter.positions(prompt, layout, torch.arange(layout.num_tokens), "transformers")
    assert torch.equal(ours, reference[:, 0])
    original = adapter.positions(prompt, layout, torch.arange(layout.num_tokens), "original")
    assert original[0, len(prompt.prefix_ids):][:layout.num_tokens].unique().tolist() == [7, 8, 9, 10]  # t = pair
    assert int(original[0, -len(prompt.suffix_ids)]) == 11  # text after the video: largest position + 1


def test_llava_onevision_newline_is_kept_last_and_never_ranked(built, monkeypatch):
    family, model, processor = built("llava_onevision")
    finals = []
    original = type(model).forward

    def spy(self, *args, **kw):
        if kw.get("mm_encoder_outputs") is not None:
            finals.append(kw["mm_encoder_outputs"]["video"].pooler_output)
        return original(self, *args, **kw)

    monkeypatch.setattr(type(model), "forward", spy)
    at.enable(model, at.AdaptTokenConfig(budget=2, frames_per_group=2))
    try:
        model.generate(**family.inputs(processor), max_new_tokens=1, do_sample=False)
        trace = model.adapttoken_trace
    finally:
        at.disable(model)
    assert trace.total_tokens == 16 and all(i < 16 for i in trace.kept_token_ids)  # the newline is no candidate
    assert all(torch.equal(rows[0, -1], model.model.image_newline) for rows in finals)
    assert finals[-1].shape[1] == 2 + 1


def test_internvl_refuses_images_of_several_tiles(built):
    family, model, processor = built("internvl")
    inputs = family.inputs(processor)
    ids = inputs["input_ids"]
    image = adapter_for(model).video_token_id
    first = int((ids[0] == image).nonzero()[0])
    inputs["input_ids"] = torch.cat([ids[:, :first], torch.full((1, 4), image), ids[:, first:]], 1)  # 2 tiles
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    with pytest.raises(at.UnsupportedInputError, match="several tiles"):
        adapter_for(model).split_inputs(inputs)


def test_qwen3_vl_refuses_a_first_frame_without_its_timestamp(built):
    family, model, processor = built("qwen3_vl")
    inputs = family.inputs(processor)
    ids = inputs["input_ids"].clone()
    adapter = adapter_for(model)
    first = int((ids[0] == adapter.video_token_id).nonzero()[0])
    timestamp = slice(first - 14, first - 1)  # "<0.5 seconds>" before unit 0's <|vision_start|>
    ids[0, timestamp] = 88  # "y" x 13: no "<" opens the first frame's text
    with pytest.raises(at.UnsupportedInputError, match="first frame's text"):
        adapter.split_inputs({**inputs, "input_ids": ids})


def test_qwen3_vl_deepstack_rows_follow_the_kept_tokens(built):
    family, model, processor = built("qwen3_vl")
    adapter = adapter_for(model)
    prompt, layout, pixels = adapter.split_inputs(family.inputs(processor))
    features = adapter.encode(adapter.unit_pixels(pixels, layout, torch.arange(layout.num_units)))
    full = model.model.get_video_features(pixel_values_videos=family.inputs(processor)["pixel_values_videos"],
                                          video_grid_thw=family.inputs(processor)["video_grid_thw"])
    kept = torch.tensor([1, 6, 14])
    encoded = adapter.model_inputs(prompt, layout, kept, features[kept], "original")["mm_encoder_outputs"]["video"]
    assert len(encoded.deepstack_features) == 2
    for ours, theirs in zip(encoded.deepstack_features, full.deepstack_features):
        assert torch.equal(ours[0], torch.cat(theirs)[kept])
    assert torch.equal(encoded.pooler_output[0], torch.cat(full.pooler_output)[kept])
