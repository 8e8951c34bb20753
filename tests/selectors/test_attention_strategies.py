"""`flexselect` and `fastv` on the stage and on every model family.

FlexSelect pools every group's scores into one top-k; FastV ranks by the last text token's attention at
`early_layer` and its group passes stop there (the layers after it never run). On every family: at full
budget both give the unmodified model's answer; at a small budget the final pass holds exactly the budget.
"""

from __future__ import annotations

import copy

import pytest
import torch

import adapttoken_plugin as at
from adapttoken_plugin import SELECTORS, AdaptTokenConfig
from adapttoken_plugin.layout import GroupEvidence, VideoLayout, interleaved_groups
from adapttoken_plugin.stage import keep_candidates
from fixtures.families import FAMILIES

LAYOUT = VideoLayout(num_units=8, grid_h=2, grid_w=2)  # 4 tokens per unit, 32 in all


def _groups(score_of_group):
    groups = []
    for g, units in enumerate(interleaved_groups(LAYOUT.num_units, 2)):
        group = GroupEvidence(g, units, LAYOUT.token_ids_of_units(units), entropy=1.0)
        scores = score_of_group(g) + 0.001 * torch.arange(group.num_tokens, dtype=torch.float32)
        keep_candidates(group, scores, torch.zeros(group.num_tokens, 2), group.num_tokens, "cpu")
        groups.append(group)
    return groups


@pytest.mark.parametrize("name", ["flexselect", "fastv"])
def test_one_global_top_k_lets_one_group_take_the_whole_budget(name):
    groups = _groups(lambda g: 0.9 if g == 2 else 0.1)  # group 2 scores above every other token
    selection = SELECTORS.get(name)(AdaptTokenConfig(selector=name, budget=8)).select(LAYOUT, groups)
    assert torch.equal(selection.kept_token_ids, groups[2].token_ids)  # its 8 tokens, all of them
    assert selection.group_budgets == [0, 0, 8, 0]
    topk = SELECTORS.get("attention-topk")(AdaptTokenConfig(selector="attention-topk", budget=8))
    assert topk.select(LAYOUT, groups).group_budgets == [2, 2, 2, 2]  # the equal split it departs from


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family_model(request):
    family = FAMILIES[request.param]
    return family, family.model(), family.build_processor()


@pytest.mark.parametrize("name", ["flexselect", "fastv"])
def test_full_budget_answers_as_the_unmodified_model_and_a_small_one_keeps_the_budget(family_model, name):
    family, model, processor = family_model
    inputs = family.inputs(processor)
    reference = model.generate(**copy.copy(inputs), max_new_tokens=3, do_sample=False)
    layer = {"early_layer": 1} if name == "fastv" else {"scoring_layer": 1}  # the layer each one reads
    config = dict(selector=name, frames_per_group=family.frames_per_group, **layer)
    try:
        at.enable(model, at.AdaptTokenConfig(budget=10**6, **config))
        assert torch.equal(model.generate(**copy.copy(inputs), max_new_tokens=3, do_sample=False), reference)
        assert model.adapttoken_trace.kept_tokens == model.adapttoken_trace.total_tokens
        at.enable(model, at.AdaptTokenConfig(budget=5, **config))
        model.generate(**copy.copy(inputs), max_new_tokens=1, do_sample=False)
        assert model.adapttoken_trace.kept_tokens == 5
        assert all(g.entropy is None for g in model.adapttoken_trace.groups) == (name == "fastv")
    finally:
        at.disable(model)


def test_fastv_group_passes_stop_after_the_early_layer_and_score_its_last_text_row(family_model):
    family, model, processor = family_model
    layers = model.get_decoder().layers
    calls = [0] * len(layers)
    handles = [layer.register_forward_pre_hook(lambda m, a, i=i: calls.__setitem__(i, calls[i] + 1))
               for i, layer in enumerate(layers)]
    try:
        at.enable(model, at.AdaptTokenConfig(selector="fastv", budget=5, early_layer=0,
                                             frames_per_group=family.frames_per_group))
        model.generate(**family.inputs(processor), max_new_tokens=1, do_sample=False)
        groups = len(model.adapttoken_trace.groups)
    finally:
        at.disable(model)
        for handle in handles:
            handle.remove()
    # layer 0 ran once per group pass plus the final pass; the later layers in the final pass only
    assert calls[0] == groups + 1 and all(c == 1 for c in calls[1:])


def test_fastv_refuses_an_early_layer_deeper_than_the_model():
    family = FAMILIES["qwen2_5_vl"]
    model = family.model()
    with pytest.raises(at.ConfigError, match="early_layer=99 is out of range"):
        at.enable(model, at.AdaptTokenConfig(selector="fastv", early_layer=99))
    assert not at.is_enabled(model)
