"""Qwen2.5-VL specifics against the unmodified upstream model (tiny random weights, float32): the two
position rules, every selector at full budget and at a small one. The contract every family meets
(scores, disable, sizes, generate) is `test_contract.py`."""


import pytest
import torch

import adapttoken_plugin as at
from adapttoken_plugin.adapters.base import adapter_for
from fixtures.tiny import LETTERS, VID, qwen2_5_vl, qwen_video_inputs

TOL = 1e-5

def positions_under(rule, model, prompt, layout, token_ids):
    """M-RoPE positions (3, L) from the adapter made with `position_rule=rule`."""
    return adapter_for(model, at.AdaptTokenConfig(position_rule=rule)).positions(prompt, layout, token_ids)



@pytest.fixture(scope="module")
def model():
    return qwen2_5_vl()


@pytest.fixture(autouse=True)
def _always_disable(model):
    yield
    at.disable(model)


def inputs(**kw):
    return qwen_video_inputs(**kw)


def test_full_budget_matches_unmodified_logits_and_generate(model):
    ref_logits = model(**inputs()).logits[0, -1]
    ref_tokens = model.generate(**inputs(), max_new_tokens=6, do_sample=False)
    for selector in ("full", "adapttoken", "adapttoken-lite", "attention-topk", "uniform"):
        at.enable(model, at.AdaptTokenConfig(selector=selector, budget=10**6, frames_per_group=4,
                                             position_rule="transformers", theta=0.0))
        logits = model(**inputs()).logits[0, -1]
        assert (logits - ref_logits).abs().max() <= TOL, selector
        tokens = model.generate(**inputs(), max_new_tokens=6, do_sample=False)
        assert torch.equal(tokens, ref_tokens), selector
        assert model.adapttoken_trace.kept_tokens == 32


def test_original_rule_positions_by_hand(model):
    adapter = adapter_for(model)
    prompt, layout, _ = adapter.split_inputs(inputs(units=3, grid_h=4, grid_w=4, seconds_per_unit=1.0))
    # prefix (5, 6, 7, <vision_start>) -> 4 tokens; interval = tokens_per_second 2 * 1 s = 2 per unit
    pos = positions_under("original", model, prompt, layout, torch.arange(layout.num_tokens))
    video = [(4 + 2 * u, 4 + r, 4 + c) for u in range(3) for r in range(2) for c in range(2)]
    text_after = [(p, p, p) for p in range(9, 15)]  # after the largest video position (t = 8): 9 ... 14
    expected = [(i, i, i) for i in range(4)] + video + text_after
    assert pos.T.tolist() == [list(e) for e in expected]
    pos_tf = positions_under("transformers", model, prompt, layout, torch.arange(layout.num_tokens))
    assert pos_tf[:, -6:].tolist() == [list(range(6, 12))] * 3  # 4 + max(h, w) = 6: overlaps the video


@pytest.mark.parametrize("seconds", [1.0, 0.5, 4.0 / 3.0])
def test_transformers_rule_reproduces_get_rope_index(model, seconds):
    full = inputs(units=5, grid_h=4, grid_w=6, seconds_per_unit=seconds)
    ref, _ = model.model.get_rope_index(full["input_ids"], full["mm_token_type_ids"],
                                        video_grid_thw=full["video_grid_thw"],
                                        second_per_grid_ts=full["second_per_grid_ts"])
    adapter = adapter_for(model)
    prompt, layout, _ = adapter.split_inputs(dict(full))
    ours = positions_under("transformers", model, prompt, layout, torch.arange(layout.num_tokens))
    assert torch.equal(ours, ref[:, 0])


@pytest.mark.parametrize("rule", ["original", "transformers"])
def test_kept_tokens_keep_their_full_video_positions_and_decoding_continues(model, rule):
    at.enable(model, at.AdaptTokenConfig(selector="adapttoken", budget=7, frames_per_group=4, position_rule=rule))
    out = model.generate(**inputs(), max_new_tokens=4, do_sample=False)
    trace = model.adapttoken_trace
    kept = torch.tensor(trace.kept_token_ids)
    assert len(kept) == 7 and kept.tolist() == sorted(kept.tolist())
    at.disable(model)

    adapter = adapter_for(model)
    prompt, layout, pixels = adapter.split_inputs(inputs())
    full_pos = positions_under(rule, model, prompt, layout, torch.arange(layout.num_tokens))
    n_pre = len(prompt.prefix_ids)
    cols = torch.cat([torch.arange(n_pre), n_pre + kept,
                      n_pre + layout.num_tokens + torch.arange(len(prompt.suffix_ids))])
    kept_pos = positions_under(rule, model, prompt, layout, kept)
    assert torch.equal(kept_pos, full_pos[:, cols])

    # An independent greedy decode: whole sequence each step, no cache, positions extended by hand.
    with torch.no_grad():
        feats = adapter.encode(adapter.unit_pixels(pixels, layout, torch.arange(layout.num_units)))[kept]
    ids = torch.cat([prompt.prefix_ids, torch.full((7,), VID), prompt.suffix_ids])[None]
    pos = kept_pos[:, None, :]
    generated = []
    for _ in range(4):
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=pos, use_cache=False,
                           mm_encoder_outputs={"video": _pooled(feats)}).logits[0, -1]
        nxt = int(logits.argmax())
        generated.append(nxt)
        ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
        pos = torch.cat([pos, pos[:, :, -1:] + 1], 2)
    assert out[0, inputs()["input_ids"].shape[1]:].tolist() == generated


def _pooled(feats):
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    return BaseModelOutputWithPooling(pooler_output=(feats,))


def test_enable_reads_the_model_config_flag(model):
    model.config.adapttoken = {"selector": "uniform", "budget": "8", "frames_per_group": 4}
    try:
        at.enable(model)
        model.generate(**inputs(), max_new_tokens=1, do_sample=False)
        assert model.adapttoken_trace.selector == "uniform" and model.adapttoken_trace.kept_tokens == 8
    finally:
        del model.config.adapttoken


@pytest.mark.parametrize("selector,expected", [
    ("adapttoken", [8, 8, 8, 8, 9]),       # four group passes of 8 tokens, then exactly the budget
    ("adapttoken-lite", [8, 9]),           # stops after one group, tops up from the groups it skipped
    ("attention-topk", [8, 8, 8, 8, 9]),
    ("uniform", [9]),                      # no group pass; whole units up to the budget, then one token more
])
def test_language_model_receives_exactly_the_budgeted_tokens(model, monkeypatch, selector, expected):
    seen = []
    original = type(model).forward

    def spy(self, *args, **kw):
        if kw.get("mm_encoder_outputs") is not None:
            seen.append(int((kw["input_ids"] == VID).sum()))
        return original(self, *args, **kw)

    monkeypatch.setattr(type(model), "forward", spy)
    at.enable(model, at.AdaptTokenConfig(selector=selector, budget=9, frames_per_group=4, theta=100.0))
    model.generate(**inputs(), max_new_tokens=2, do_sample=False)
    assert seen == expected
    assert model.adapttoken_trace.kept_tokens == expected[-1]


def test_images_beside_the_video_raise_a_clear_error(model):
    at.enable(model, at.AdaptTokenConfig(budget=5, frames_per_group=4))
    with pytest.raises(at.UnsupportedInputError, match="images"):
        model.generate(**inputs(), pixel_values=torch.zeros(4, 10), max_new_tokens=1)


def test_options_entropy_needs_options(model):
    at.enable(model, at.AdaptTokenConfig(budget=5, frames_per_group=4, entropy_mode="options"))
    with pytest.raises(at.OptionsRequiredError):
        model.generate(**inputs(), max_new_tokens=1)
    model.generate(**inputs(), max_new_tokens=1, adapttoken_option_ids=list(LETTERS.values()))
    import math

    assert all(g.entropy <= math.log(4) + 1e-6 for g in model.adapttoken_trace.groups)


def test_unsupported_model_and_bad_settings_leave_the_model_untouched(model):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    text_only = Qwen2ForCausalLM(Qwen2Config(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, num_key_value_heads=1))
    with pytest.raises(at.UnsupportedModelError, match="Qwen2ForCausalLM"):
        at.enable(text_only)
    assert "generate" not in text_only.__dict__
    with pytest.raises(at.ConfigError, match="scoring_layer"):
        at.enable(model, at.AdaptTokenConfig(scoring_layer=99))
    with pytest.raises(at.ConfigError, match="budget"):
        at.enable(model, {"budget": 0})
    assert not at.is_enabled(model) and "generate" not in model.__dict__

