"""What one family does differently from the contract (the contract itself: `test_contract.py`)."""

from __future__ import annotations

import pytest
import torch

import adapttoken_plugin as at
from adapttoken_plugin.adapters.base import adapter_for
from fixtures.families import FAMILIES


def positions_under(rule, model, prompt, layout, token_ids):
    """M-RoPE positions (3, L) from the adapter made with `position_rule=rule`."""
    return adapter_for(model, at.AdaptTokenConfig(position_rule=rule)).positions(prompt, layout, token_ids)



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
    ours = positions_under("transformers", model, prompt, layout, torch.arange(layout.num_tokens))
    assert torch.equal(ours, reference[:, 0])
    original = positions_under("original", model, prompt, layout, torch.arange(layout.num_tokens))
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
    encoded = adapter.model_inputs(prompt, layout, kept, features[kept])["mm_encoder_outputs"]["video"]
    assert len(encoded.deepstack_features) == 2
    for ours, theirs in zip(encoded.deepstack_features, full.deepstack_features):
        assert torch.equal(ours[0], torch.cat(theirs)[kept])
    assert torch.equal(encoded.pooler_output[0], torch.cat(full.pooler_output)[kept])


def test_qwen3_vl_streaming_timestamps_come_from_the_file_indices_at_the_native_rate(built, tmp_path):
    """Sampled at 2 fps from an 8 fps file, frame pair (i, j) is announced at (i + j) / 2 / 8 seconds (the
    processor's rule), not at its sample position."""
    from adapttoken_plugin.pipeline import Pipeline
    from adapttoken_plugin.video import write_video
    from fixtures.families import token_string

    family, model, processor = built("qwen3_vl")
    path = tmp_path / "clip.mp4"
    write_video(path, family.video(seed=2).repeat(4, axis=0), fps=8.0)  # 32 frames, 4 s
    pipe = Pipeline(model, processor, at.AdaptTokenConfig(fps=2.0, max_frames=64, frames_per_group=4), backend="pyav")
    with pipe.open_video(path) as session:
        indices = session.layout.frame_indices
        prompt = pipe.prompt_parts("Which colour?", session)
    assert indices == tuple(range(0, 32, 4))
    expected = [f"<{(indices[2 * u] + indices[2 * u + 1]) / 2 / 8.0:.1f} seconds>" for u in range(4)]
    heads = [token_string(head)[:-1] for head in prompt.unit_heads]  # without <|vision_start|>
    assert heads == expected
    assert [token_string(tail) for tail in prompt.unit_tails] == [token_string(torch.tensor(
        [processor.tokenizer.convert_tokens_to_ids("<|vision_end|>")]))] * 4


def test_qwen3_vl_deduplication_compares_the_main_features_only(built):
    """Same-cell pairs (0, 4) and (9, 13): the first has identical main features and unrelated DeepStack
    levels, the second the reverse (large, identical DeepStack levels dominate the concatenation). Only
    the first is a duplicate of what the language model sees, so its lower-scored token goes."""
    from adapttoken_plugin.layout import GroupEvidence
    from adapttoken_plugin.selectors.adapttoken import AdaptTokenSelector

    family, model, processor = built("qwen3_vl")
    adapter = adapter_for(model)
    layout = adapter.split_inputs(family.inputs(processor))[1]
    dim = layout.similarity_dims
    assert dim == model.config.vision_config.out_hidden_size and layout.tokens_per_unit == 4
    g = torch.Generator().manual_seed(0)
    main, deepstack = torch.randn(4, dim, generator=g), torch.randn(4, 2 * dim, generator=g) * 100
    main[1] = main[0]
    deepstack[3] = deepstack[2]
    ids = torch.tensor([0, 4, 9, 13])
    scores = torch.zeros(layout.num_tokens).index_put_((ids,), torch.tensor([4.0, 3.0, 2.0, 1.0]))
    group = GroupEvidence(0, torch.arange(layout.num_units), torch.arange(layout.num_tokens), scores=scores,
                          entropy=0.5, candidate_ids=ids, candidate_features=torch.cat([main, deepstack], dim=1))
    config = at.AdaptTokenConfig(budget=3, overselect=1.3)
    assert AdaptTokenSelector(config).select(layout, [group]).kept_token_ids.tolist() == [0, 9, 13]
