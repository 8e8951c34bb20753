"""Qwen2.5-VL adapter against the unmodified upstream model (tiny random weights, float32)."""

import copy

import pytest
import torch

import adapttoken_plugin as at
from adapttoken_plugin.adapters.base import adapter_for
from adapttoken_plugin.scoring import capture_scores
from tiny import LETTERS, VID, qwen2_5_vl, qwen_video_inputs

TOL = 1e-5


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
    pos = adapter.positions(prompt, layout, torch.arange(layout.num_tokens), "original")
    video = [(4 + 2 * u, 4 + r, 4 + c) for u in range(3) for r in range(2) for c in range(2)]
    text_after = [(p, p, p) for p in range(9, 15)]  # after the largest video position (t = 8): 9 ... 14
    expected = [(i, i, i) for i in range(4)] + video + text_after
    assert pos.T.tolist() == [list(e) for e in expected]
    pos_tf = adapter.positions(prompt, layout, torch.arange(layout.num_tokens), "transformers")
    assert pos_tf[:, -6:].tolist() == [list(range(6, 12))] * 3  # 4 + max(h, w) = 6: overlaps the video


@pytest.mark.parametrize("seconds", [1.0, 0.5, 4.0 / 3.0])
def test_transformers_rule_reproduces_get_rope_index(model, seconds):
    full = inputs(units=5, grid_h=4, grid_w=6, seconds_per_unit=seconds)
    ref, _ = model.model.get_rope_index(full["input_ids"], full["mm_token_type_ids"],
                                        video_grid_thw=full["video_grid_thw"],
                                        second_per_grid_ts=full["second_per_grid_ts"])
    adapter = adapter_for(model)
    prompt, layout, _ = adapter.split_inputs(dict(full))
    ours = adapter.positions(prompt, layout, torch.arange(layout.num_tokens), "transformers")
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
    full_pos = adapter.positions(prompt, layout, torch.arange(layout.num_tokens), rule)
    n_pre = len(prompt.prefix_ids)
    cols = torch.cat([torch.arange(n_pre), n_pre + kept,
                      n_pre + layout.num_tokens + torch.arange(len(prompt.suffix_ids))])
    kept_pos = adapter.positions(prompt, layout, kept, rule)
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


@pytest.mark.parametrize("layer", [0, 2])
def test_recomputed_scores_equal_eager_attention(model, layer):
    adapter = adapter_for(model)
    prompt, layout, pixels = adapter.split_inputs(inputs())
    group = torch.tensor([1, 5])
    token_ids = layout.token_ids_of_units(group)
    with torch.no_grad():
        feats = adapter.encode(adapter.unit_pixels(pixels, layout, group))
    group_inputs = adapter.model_inputs(prompt, layout, token_ids, feats, "original")
    n_pre, n_vis, n_q = len(prompt.prefix_ids), len(token_ids), len(prompt.suffix_ids)
    seq_len = group_inputs["input_ids"].shape[1]
    assert model.config.text_config._attn_implementation == "sdpa"
    with torch.no_grad(), capture_scores(adapter, layer, n_q, slice(n_pre, n_pre + n_vis), "max", seq_len) as cap:
        model(**group_inputs)
    assert model.config.text_config._attn_implementation == "sdpa"

    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        attn = eager(**group_inputs, output_attentions=True).attentions[layer]  # (1, H, L, L)
    rows = attn[0, :, -n_q:, n_pre:n_pre + n_vis]
    assert (cap.scores - rows.amax(dim=(0, 1))).abs().max() <= TOL
    with torch.no_grad(), capture_scores(adapter, layer, n_q, slice(n_pre, n_pre + n_vis), "mean", seq_len) as cap:
        model(**group_inputs)
    assert (cap.scores - rows.mean(dim=(0, 1))).abs().max() <= TOL


def test_disable_restores_the_model_exactly(model):
    fresh = qwen2_5_vl()
    before = set(model.__dict__)
    hooks_before = sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())
    at.enable(model, at.AdaptTokenConfig(budget=5, frames_per_group=4))
    model.generate(**inputs(), max_new_tokens=2, do_sample=False)
    assert at.is_enabled(model)
    at.disable(model)
    assert set(model.__dict__) == before and not at.is_enabled(model)
    assert sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules()) == hooks_before
    assert type(model).generate is type(fresh).generate and "generate" not in model.__dict__
    assert torch.equal(model(**inputs()).logits, fresh(**inputs()).logits)
    assert torch.equal(model.generate(**inputs(), max_new_tokens=4, do_sample=False),
                       fresh.generate(**inputs(), max_new_tokens=4, do_sample=False))


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
    ("adapttoken-lite", [8, 8]),           # stops after one group; the budget is capped by what it saw
    ("attention-topk", [8, 8, 8, 8, 9]),
    ("uniform", [8]),                      # no group pass; whole units up to the budget
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


@pytest.mark.parametrize("mutate,error", [
    (lambda d: d.update(input_ids=d["input_ids"].repeat(2, 1)), at.UnsupportedInputError),
    (lambda d: d.update(input_ids=torch.where(d["input_ids"] == VID, 50, d["input_ids"])), at.NoVideoError),
    (lambda d: d.update(attention_mask=torch.cat([torch.zeros(1, 1, dtype=torch.long),
                                                  d["attention_mask"][:, 1:]], 1)), at.UnsupportedInputError),
    (lambda d: d.update(pixel_values=torch.zeros(4, 10)), at.UnsupportedInputError),
])
def test_bad_inputs_raise_clear_errors(model, mutate, error):
    at.enable(model, at.AdaptTokenConfig(budget=5, frames_per_group=4))
    bad = inputs()
    mutate(bad)
    with pytest.raises(error):
        model.generate(**bad, max_new_tokens=1)


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


def test_calls_without_video_pass_through_with_positional_arguments(model):
    ids = torch.tensor([[5, 6, 7, 8]])
    ref = model(ids, torch.ones_like(ids)).logits
    at.enable(model, at.AdaptTokenConfig(budget=5))
    assert torch.equal(model(ids, torch.ones_like(ids)).logits, ref)
    assert torch.equal(model.generate(ids, max_new_tokens=3, do_sample=False),
                       type(model).generate(model, ids, max_new_tokens=3, do_sample=False))
    assert model.adapttoken_trace is None  # nothing was selected
