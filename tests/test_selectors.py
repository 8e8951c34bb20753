"""Selectors on synthetic evidence: no model involved (strategies never touch one)."""

import pytest
import torch

from adapttoken_plugin import SELECTORS, AdaptTokenConfig
from adapttoken_plugin.allocation import allocate_budget
from adapttoken_plugin.layout import GroupEvidence, VideoLayout, interleaved_groups

LAYOUT = VideoLayout(num_units=12, grid_h=2, grid_w=3, frames_per_unit=2)  # 6 tokens per unit, 72 in all


def evidence(entropies, seed=0, store=1000):
    g = torch.Generator().manual_seed(seed)
    groups = []
    for gid, units in enumerate(interleaved_groups(LAYOUT.num_units, LAYOUT.num_units // len(entropies))):
        ids = LAYOUT.token_ids_of_units(units)
        scores = torch.rand(len(ids), generator=g)
        order = torch.argsort(scores, descending=True, stable=True)[:store]
        groups.append(GroupEvidence(gid, units, ids, scores, entropies[gid], ids[order],
                                    torch.randn(len(order), 8, generator=g)))
    return groups


def select(name, groups, **cfg):
    return SELECTORS.get(name)(AdaptTokenConfig(selector=name, **cfg)).select(LAYOUT, groups)


def test_interleaved_groups_span_the_video():
    groups = interleaved_groups(10, 4)
    assert [g.tolist() for g in groups] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]


def test_registry_holds_the_built_in_selectors():
    assert set(SELECTORS.names()) >= {"full", "uniform", "random", "attention-topk", "adapttoken",
                                      "adapttoken-lite", "flexselect", "fastv"}


def test_full_keeps_everything():
    assert select("full", evidence([1.0, 1.0]), budget=5).kept_token_ids.tolist() == list(range(72))


def test_uniform_takes_evenly_spaced_whole_units():
    kept = select("uniform", evidence([1.0] * 3), budget=24).kept_token_ids
    units = torch.unique(LAYOUT.unit_of(kept)).tolist()
    assert len(kept) == 24 and units == [1, 4, 7, 10]  # centres of 4 equal segments of 12 units


def test_random_is_seeded_sorted_and_exact():
    a = select("random", evidence([1.0] * 3), budget=20, seed=3).kept_token_ids
    b = select("random", evidence([1.0] * 3), budget=20, seed=3).kept_token_ids
    c = select("random", evidence([1.0] * 3), budget=20, seed=4).kept_token_ids
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len(a) == 20 and a.tolist() == sorted(set(a.tolist()))


def test_attention_topk_takes_each_groups_best_scores_equally():
    groups = evidence([0.1, 1.3, 1.3])
    sel = select("attention-topk", groups, budget=12)
    assert sel.group_budgets == [4, 4, 4]
    for g in groups:
        best = g.token_ids[torch.argsort(g.scores, descending=True)[:4]]
        assert set(best.tolist()) <= set(sel.kept_token_ids.tolist())


def test_adapttoken_gives_more_to_confident_groups_and_exact_total():
    groups = evidence([0.05, 1.3, 1.35])
    sel = select("adapttoken", groups, budget=30, tau=0.5)
    assert sel.group_budgets == allocate_budget(30, [0.05, 1.3, 1.35], [24, 24, 24], 0.5)
    assert sel.group_budgets[0] > sel.group_budgets[1] >= sel.group_budgets[2]
    assert len(sel.kept_token_ids) == 30
    kept_first = int(torch.isin(groups[0].token_ids, sel.kept_token_ids).sum())
    kept_last = int(torch.isin(groups[2].token_ids, sel.kept_token_ids).sum())
    assert kept_first > kept_last


def test_adapttoken_without_dedup_is_top_k_of_the_allocation():
    groups = evidence([0.05, 1.3, 1.35])
    sel = select("adapttoken", groups, budget=30, dedup=False)
    for g, b in zip(groups, sel.group_budgets):
        best = g.token_ids[torch.argsort(g.scores, descending=True, stable=True)[:b]]
        assert set(best.tolist()) == set(sel.kept_token_ids.tolist()) & set(g.token_ids.tolist())


def test_budget_above_all_tokens_keeps_all():
    assert len(select("adapttoken", evidence([0.5, 0.7]), budget=10**6).kept_token_ids) == 72


@pytest.mark.parametrize("entropies,theta,expected_stop", [
    ([1.3, 0.1, 0.05, 1.3], 0.2, 2), ([1.3, 1.2, 1.3, 1.1], 0.2, None), ([0.0, 0.0, 0.0, 0.0], 0.0, 1),
])
def test_lite_stops_at_the_first_confident_group(entropies, theta, expected_stop):
    selector = SELECTORS.get("adapttoken-lite")(AdaptTokenConfig(selector="adapttoken-lite", theta=theta))
    groups = evidence(entropies)
    seen = []
    for g in groups:
        seen.append(g)
        if selector.should_stop(seen, len(groups)):
            break
    assert len(seen) == (expected_stop or len(groups))


def test_lite_respects_min_groups_and_allocates_over_seen_groups_only():
    cfg = AdaptTokenConfig(selector="adapttoken-lite", theta=0.5, min_groups=2, budget=20)
    selector = SELECTORS.get("adapttoken-lite")(cfg)
    groups = evidence([0.1, 1.0, 0.1, 1.0])
    assert not selector.should_stop(groups[:1], 4)
    assert not selector.should_stop(groups[:2], 4)
    assert selector.should_stop(groups[:3], 4)
    sel = selector.select(LAYOUT, groups[:3])
    assert len(sel.group_budgets) == 3 and sum(sel.group_budgets) == 20
    unseen = groups[3].token_ids
    assert not torch.isin(sel.kept_token_ids, unseen).any()
