"""The feature-based and merging strategies on every real tiny model family, through `enable` and the unmodified
model classes (`fixtures.families`): at a budget of every token each keeps every token, merges nothing and answers
as the unmodified model; at a small budget each keeps exactly min(budget, tokens); merged tokens reach the final
pass with their merged features."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import adapttoken_plugin as at
from adapttoken_plugin.adapters.base import adapter_for
from adapttoken_plugin.stage import Query, Stage
from fixtures.families import FAMILIES

STRATEGIES = ["vidcom2", "evs", "divprune", "fastvid", "framefusion", "adapttoken-merge"]
SMALL_BUDGET = 3  # of 16 visual tokens in 4 frame units


@pytest.fixture(autouse=True, scope="module")
def _one_intra_op_thread():
    """The tiny models run much faster on one thread when the machine's few cores are busy (as in tests/adapters)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family_setup(request) -> tuple[Any, Any, Any, torch.Tensor]:
    """(family, model, processor, the unmodified model's greedy answer of 2 tokens)."""
    family = FAMILIES[request.param]
    model, processor = family.model(), family.build_processor()
    reference = model.generate(**family.inputs(processor), max_new_tokens=2, do_sample=False)
    yield family, model, processor, reference
    at.disable(model)


def _config(family, selector: str, budget: int) -> at.AdaptTokenConfig:
    """Two frame units per group for the selectors with group passes (the feature pass reads no group setting); the
    position rule the unmodified model follows."""
    groups = {"frames_per_group": family.frames_per_group} if at.SELECTORS.get(selector).needs_group_pass else {}
    return at.AdaptTokenConfig(selector=selector, budget=budget, position_rule="transformers", **groups)


@pytest.mark.parametrize("selector", STRATEGIES)
def test_every_token_at_full_budget_answers_as_the_unmodified_model(family_setup, selector):
    family, model, processor, reference = family_setup
    at.enable(model, _config(family, selector, 10**6))
    try:
        out = model.generate(**family.inputs(processor), max_new_tokens=2, do_sample=False)
        trace = model.adapttoken_trace
    finally:
        at.disable(model)
    assert trace.kept_tokens == trace.total_tokens == 16 and trace.merged_tokens == 0
    assert torch.equal(out, reference)


@pytest.mark.parametrize("selector", STRATEGIES)
def test_a_small_budget_keeps_exactly_the_budget(family_setup, selector):
    family, model, processor, _ = family_setup
    at.enable(model, _config(family, selector, SMALL_BUDGET))
    try:
        out = model.generate(**family.inputs(processor), max_new_tokens=1, do_sample=False)
        trace = model.adapttoken_trace
    finally:
        at.disable(model)
    assert trace.kept_tokens == len(trace.kept_token_ids) == min(SMALL_BUDGET, trace.total_tokens)
    assert out.shape[1] == family.inputs(processor)["input_ids"].shape[1] + 1


def test_merged_tokens_reach_the_final_pass_as_the_mean_of_their_run(family_setup):
    """framefusion with every same-cell pair eligible and a budget of one unit: each cell's run over all units
    merges into its unit-0 token, whose final feature is the mean of the cell's features over the video."""
    family, model, processor, _ = family_setup
    config = _config(family, "framefusion", 4).replace(framefusion_threshold=-1.0)
    adapter = adapter_for(model, config)
    prompt, layout, pixels = adapter.split_inputs(dict(family.inputs(processor)))
    stage = Stage(model, adapter, config)
    query = Query(prompt, layout, lambda units: adapter.unit_pixels(pixels, layout, units))
    result = stage.run(query)
    video = stage.encode_video(query).float()  # (16, D) every token's features, time then raster
    assert layout.tokens_per_unit == 4 and result.token_ids.tolist() == [0, 1, 2, 3]
    assert result.trace.merged_tokens == 4
    expected = video.reshape(layout.num_units, 4, -1).mean(0)
    assert torch.allclose(result.features.float().cpu(), expected.cpu(), atol=1e-5)
    at.enable(model, config)  # and the model answers from them
    try:
        model.generate(**family.inputs(processor), max_new_tokens=1, do_sample=False)
        assert model.adapttoken_trace.merged_tokens == 4
    finally:
        at.disable(model)
