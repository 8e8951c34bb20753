"""AdaptToken on a real LLaVA-NeXT fork (`llavaction`, transformers 4.51.3), tiny random-weight models."""

import pytest
import torch
from tiny_llava import PACKAGE, PROMPT_PREFIX, PROMPT_SUFFIX, llava_qwen, prompt_ids, video

import adapttoken_plugin.integrations.llava as llava
from adapttoken_plugin.errors import ConfigError, UnsupportedInputError, UnsupportedModelError

FRAMES, GRID = 8, 4  # 8 frames of 4 x 4 tokens: 128 visual tokens


def generate(model, frames=None, **kw):
    frames = video(FRAMES) if frames is None else frames
    kw.setdefault("max_new_tokens", 6)
    return model.generate(prompt_ids(), images=[frames], modalities=["video"], do_sample=False, **kw)


def generate_scores(model, frames=None):
    out = generate(model, frames, output_logits=True, return_dict_in_generate=True)
    return out.sequences, torch.stack(out.logits)


def final_prefill_embeds(model, run):
    """inputs_embeds of the last multi-token call into the fork's decoder during `run()` (the final prefill)."""
    seen = []
    handle = model.get_model().register_forward_pre_hook(
        lambda mod, args, kwargs: seen.append(kwargs.get("inputs_embeds")), with_kwargs=True)
    try:
        run()
    finally:
        handle.remove()
    return [e for e in seen if e is not None and e.shape[1] > 1][-1][0]


def test_the_fork_is_the_one_under_test(vision_dir):
    model = llava_qwen(vision_dir)
    assert type(model).__module__.startswith(PACKAGE + ".")
    prepared = model.prepare_inputs_labels_for_multimodal(prompt_ids(), None, None, None, None, [video(2)],
                                                          modalities=["video"])
    assert len(prepared) == 7  # llavaction's 7-tuple, not upstream's 6
    assert llava.find_model_classes(PACKAGE)  # found by structure


def test_flag_absent_changes_nothing(vision_dir):
    untouched, model = llava_qwen(vision_dir), llava_qwen(vision_dir)
    before = dict(model.__dict__)
    assert llava.apply_if_configured(model) is model
    assert model.__dict__ == before
    assert torch.equal(generate(model), generate(untouched))


def test_disable_restores_the_instance_exactly(vision_dir):
    untouched, model = llava_qwen(vision_dir), llava_qwen(vision_dir)
    keys = set(model.__dict__)
    llava.enable(model, {"budget": 16, "frames_per_group": 4})
    generate(model)
    assert model.adapttoken_trace.kept_tokens == 16
    llava.disable(model)
    assert set(model.__dict__) == keys and not llava.is_enabled(model)
    a, b = generate_scores(model), generate_scores(untouched)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("merge,position", [("spatial_unpad", "grid"), ("spatial_unpad", "frame"),
                                            ("spatial_unpad", "one_token"), ("flat", "grid")])
@pytest.mark.parametrize("selector", ["adapttoken", "adapttoken-lite", "full"])
def test_full_budget_gives_the_unselected_answer(vision_dir, merge, position, selector):
    untouched = llava_qwen(vision_dir, mm_patch_merge_type=merge, mm_newline_position=position)
    model = llava_qwen(vision_dir, mm_patch_merge_type=merge, mm_newline_position=position)
    model.config.adapttoken = {"selector": selector, "budget": FRAMES * GRID * GRID, "frames_per_group": 4,
                               "theta": 0.0}
    llava.apply_if_configured(model)
    sequences, logits = generate_scores(model)
    expected_sequences, expected_logits = generate_scores(untouched)
    assert torch.equal(sequences, expected_sequences)
    torch.testing.assert_close(logits, expected_logits, rtol=1e-4, atol=1e-4)
    assert model.adapttoken_trace.kept_tokens == FRAMES * GRID * GRID
    # the sequence the language model got is the fork's own, row for row
    ours = final_prefill_embeds(model, lambda: generate(model, max_new_tokens=1))
    fork = untouched.prepare_inputs_labels_for_multimodal(prompt_ids(), None, None, None, None, [video(FRAMES)],
                                                          modalities=["video"])[4][0]
    torch.testing.assert_close(ours, fork, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("selector,budget", [
    *[(s, b) for s in ("adapttoken", "adapttoken-lite", "attention-topk", "random") for b in (1, 23, 40)],
    ("uniform", 2 * GRID * GRID),  # uniform keeps whole frames
])
def test_small_budget_sends_exactly_the_budget_in_temporal_order(vision_dir, selector, budget):
    model = llava_qwen(vision_dir)
    llava.enable(model, {"selector": selector, "budget": budget, "frames_per_group": 3})
    frames = video(FRAMES)
    embeds = final_prefill_embeds(model, lambda: generate(model, frames))
    kept = model.adapttoken_trace.kept_token_ids
    assert len(kept) == budget == model.adapttoken_trace.kept_tokens
    assert kept == sorted(kept) and len(set(kept)) == budget
    # expected rows, built here from the fork's own encoder and pooling of the whole video
    with torch.no_grad():
        features = model.get_2dPool(model.encode_images(frames)).reshape(-1, 64)
        newline = model.get_model().image_newline
        text = model.get_model().embed_tokens(torch.tensor(PROMPT_PREFIX + PROMPT_SUFFIX))
    rows, last_row = [], None
    for k in kept:
        row = k // GRID  # grid layout: a newline closes each frame row that keeps a token
        if last_row is not None and row != last_row:
            rows.append(newline)
        rows.append(features[k])
        last_row = row
    rows.append(newline)
    expected = torch.cat([text[:len(PROMPT_PREFIX)], torch.stack(rows), text[len(PROMPT_PREFIX):]])
    assert embeds.shape == expected.shape
    torch.testing.assert_close(embeds, expected, rtol=1e-4, atol=1e-4)


def test_config_file_route(vision_dir, tmp_path):
    """`adapttoken` saved in config.json (what overwrite_config or an edited config file gives) switches it on."""
    from llavaction.model.language_model.llava_qwen import LlavaQwenForCausalLM

    source = llava_qwen(vision_dir)
    source.config.adapttoken = {"budget": 20, "frames_per_group": "4", "tau": "1.0"}
    source.save_pretrained(tmp_path)
    loaded = LlavaQwenForCausalLM.from_pretrained(tmp_path, attn_implementation="sdpa").eval()
    llava.apply_if_configured(loaded)
    assert llava.is_enabled(loaded) and llava.config_of(loaded).tau == 1.0
    generate(loaded)
    assert loaded.adapttoken_trace.kept_tokens == 20


def test_generated_entropy_mode_runs_group_generations(vision_dir):
    model = llava_qwen(vision_dir)
    llava.enable(model, {"budget": 30, "frames_per_group": 4, "entropy_mode": "generated",
                         "entropy_max_new_tokens": 3})
    generate(model)
    groups = model.adapttoken_trace.groups
    assert len(groups) == 2 and all(g.entropy is not None and g.entropy > 0 for g in groups)
    assert sum(g.kept for g in groups) == 30


def test_calls_without_a_video_pass_through(vision_dir):
    untouched, model = llava_qwen(vision_dir), llava_qwen(vision_dir)
    llava.enable(model, {"budget": 10})
    text = torch.tensor([[5, 6, 7, 8]])
    assert torch.equal(model.generate(text, max_new_tokens=4, do_sample=False),
                       untouched.generate(text, max_new_tokens=4, do_sample=False))
    assert model.adapttoken_trace is None


def test_bad_inputs_fail_loudly(vision_dir):
    model = llava_qwen(vision_dir)
    llava.enable(model, {"budget": 10})
    with pytest.raises(UnsupportedInputError, match="one prompt at a time"):
        model.generate(prompt_ids().repeat(2, 1), images=[video(4)], modalities=["video"])
    with pytest.raises(UnsupportedInputError, match="one video per prompt"):
        model.generate(prompt_ids(), images=[video(4), video(4)], modalities=["video", "video"])
    with pytest.raises(UnsupportedInputError, match="exactly one video placeholder"):
        model.generate(torch.tensor([[5, 6, 7]]), images=[video(4)], modalities=["video"])
    with pytest.raises(UnsupportedInputError, match="padded prompts"):
        model.generate(prompt_ids(), attention_mask=torch.tensor([[0] + [1] * 10]), images=[video(4)],
                       modalities=["video"])
    with pytest.raises(UnsupportedInputError, match="forward"):
        model(prompt_ids(), images=[video(4)], modalities=["video"])


def test_enable_refuses_what_it_cannot_do(vision_dir):
    model = llava_qwen(vision_dir)
    with pytest.raises(ConfigError, match="positions_1d"):
        llava.enable(model, {"positions_1d": "original"})
    with pytest.raises(ConfigError, match="unknown AdaptTokenConfig key 'budgett'"):
        llava.enable(model, {"budgett": 3})
    with pytest.raises(ConfigError, match="scoring_layer=9"):
        llava.enable(model, {"scoring_layer": 9})
    with pytest.raises(UnsupportedModelError, match="lacks"):
        llava.enable(torch.nn.Linear(2, 2), {})
    assert not llava.is_enabled(model) and "generate" not in model.__dict__


def test_a_fork_that_changes_the_video_layout_is_refused(vision_dir):
    """llavaction's action-supervision variant appends a learnt token after the video: the layout check
    against the fork's own preparation catches it instead of answering from a different sequence."""
    model = llava_qwen(vision_dir, vision_supervision="one_token", action_types="3,4,5")
    with torch.no_grad():
        model.get_model().action_supervision.normal_()
    llava.enable(model, {"budget": 10})
    with pytest.raises(UnsupportedModelError, match="changes the video layout"):
        generate(model)


def test_scores_equal_the_eager_attention_rows(vision_dir):
    """The scoring hook (forward pre-hook on the layer's self_attn, transformers 4.51's Qwen2 passes
    position_embeddings) recomputes what eager attention gives; the model itself stays on sdpa."""
    from adapttoken_plugin.stage import Query

    model = llava_qwen(vision_dir)
    llava.enable(model, {"budget": 20, "frames_per_group": 4, "scoring_layer": 1})
    state = model.__dict__["_adapttoken_llava_state"]
    adapter = state.adapter
    frames = video(FRAMES)
    prompt, layout, _ = adapter.split_inputs({"input_ids": prompt_ids(), "images": [frames], "modalities": "video"})
    pixels_for = lambda units: adapter.unit_pixels(frames, layout, units)  # noqa: E731
    evidence = state.stage.collect_evidence(Query(prompt, layout, pixels_for))
    assert model.config._attn_implementation == "sdpa"
    model.config._attn_implementation = "eager"  # the reference only
    for group in evidence.visited:
        inputs = adapter.model_inputs(prompt, layout, group.token_ids, adapter.encode(pixels_for(group.units)))
        with torch.no_grad():
            attentions = model.get_model()(inputs_embeds=inputs["inputs_embeds"], output_attentions=True).attentions
        columns = adapter.visual_columns(prompt, layout, group.token_ids)
        rows = attentions[1][0, :, -len(PROMPT_SUFFIX):, columns]
        torch.testing.assert_close(group.scores, rows.reshape(-1, rows.shape[-1]).amax(0), rtol=1e-5, atol=1e-6)


def test_key_set_to_true_means_the_defaults_and_false_means_off(vision_dir):
    model = llava_qwen(vision_dir)
    model.config.adapttoken = False
    assert not llava.is_enabled(llava.apply_if_configured(model))
    model.config.adapttoken = True
    llava.apply_if_configured(model)
    assert llava.config_of(model).budget == 7040  # AdaptTokenConfig's default


def test_lite_stops_early_and_still_sends_the_budget(vision_dir):
    model = llava_qwen(vision_dir)
    llava.enable(model, {"selector": "adapttoken-lite", "budget": 12, "frames_per_group": 2, "theta": 100.0})
    generate(model)
    trace = model.adapttoken_trace
    assert trace.groups_visited == 1 and len(trace.groups) == 4 and trace.kept_tokens == 12


def test_package_helpers_refuse_what_is_not_a_fork():
    import json
    import sys

    from adapttoken_plugin.integrations.llava.structure import alias_package

    with pytest.raises(UnsupportedModelError, match="'json' defines no class"):
        llava.find_model_classes("json")
    with pytest.raises(UnsupportedModelError, match="cannot import"):
        llava.find_model_classes("no_such_fork")
    sys.modules["llava"] = json  # another package already imported as `llava`
    try:
        with pytest.raises(ConfigError, match="already imported"):
            alias_package(PACKAGE, "llava", ("constants",))
    finally:
        del sys.modules["llava"]
