"""`adapttoken-merge`: AdaptToken's selection, with each near-duplicate that de-duplication removes merged into the
token it duplicates (the mean of their features) instead of dropped."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adapttoken_plugin import SELECTORS, AdaptTokenConfig
from adapttoken_plugin.layout import GroupEvidence, VideoLayout, interleaved_groups
from adapttoken_plugin.selectors.adapttoken_merge import merge_roots
from adapttoken_plugin.stage import keep_candidates

LAYOUT = VideoLayout(num_units=4, grid_h=1, grid_w=2)  # 2 cells, 8 tokens; groups {0, 2} and {1, 3} of units


def evidence(features: torch.Tensor, scores: torch.Tensor, budget: int, layout: VideoLayout = LAYOUT,
             units_per_group: int = 2, overselect: float = 1.1) -> list[GroupEvidence]:
    """Groups over `layout` with these (N, D) features and (N,) scores, entropies 0.5, 0.6, ..."""
    groups = []
    for g, units in enumerate(interleaved_groups(layout.num_units, units_per_group)):
        group = GroupEvidence(g, units, layout.token_ids_of_units(units), entropy=0.5 + 0.1 * g)
        keep = min(group.num_tokens, math.ceil(overselect * budget))
        keep_candidates(group, scores[group.token_ids], features[group.token_ids], keep, "cpu")
        groups.append(group)
    return groups


def both(groups: list[GroupEvidence], layout: VideoLayout = LAYOUT, **settings_):
    """(adapttoken's selection, adapttoken-merge's) on the same evidence and settings."""
    return tuple(SELECTORS.get(name)(AdaptTokenConfig(selector=name, **settings_)).select(layout, groups)
                 for name in ("adapttoken", "adapttoken-merge"))


def orthogonal(n: int = 8, dim: int = 16) -> torch.Tensor:
    return torch.eye(dim)[:n] * torch.arange(1, n + 1)[:, None]


def test_a_removed_near_duplicate_is_merged_into_its_pair_as_the_mean():
    features = orthogonal()
    features[2] = features[0] + 0.01  # unit 1 cell 0 repeats unit 0 cell 0 (another group)
    scores = torch.linspace(1.0, 0.2, 8)  # token 0 outscores token 2
    plain, merged = both(evidence(features, scores, 7), budget=7)
    assert plain.kept_token_ids.tolist() == merged.kept_token_ids.tolist() == [0, 1, 3, 4, 5, 6, 7]
    assert plain.merged_ids is None
    assert merged.merged_ids.tolist() == [0]
    assert torch.allclose(merged.merged_features[0], (features[0] + features[2]) / 2)


def test_a_chain_of_merges_ends_in_the_token_that_survives_it():
    features = orthogonal()
    features[2] = features[0] + 0.001  # cell 0 over units 0, 1, 2: 0 ~ 2 most alike, then 2 ~ 4
    features[4] = features[0] + 0.05
    scores = torch.tensor([0.1, 0.5, 0.2, 0.5, 0.9, 0.5, 0.5, 0.5])  # 0 loses to 2, then 2 loses to 4
    plain, merged = both(evidence(features, scores, 6), budget=6)
    assert plain.kept_token_ids.tolist() == merged.kept_token_ids.tolist() == [1, 3, 4, 5, 6, 7]
    assert merged.merged_ids.tolist() == [4]
    assert torch.allclose(merged.merged_features[0], features[[0, 2, 4]].mean(0))


def test_with_nothing_to_merge_it_is_adapttoken():
    features, scores = orthogonal(), torch.linspace(1.0, 0.2, 8)
    groups = evidence(features, scores, 5)
    for settings_ in ({"budget": 5, "dedup_window": 0}, {"budget": 5, "dedup": False}, {"budget": 8}):
        plain, merged = both(groups, **settings_)  # no pairs / no de-duplication / nothing to remove
        assert plain.kept_token_ids.tolist() == merged.kept_token_ids.tolist()
        assert plain.group_budgets == merged.group_budgets
        assert merged.merged_ids is None or len(merged.merged_ids) == 0


@settings(max_examples=40, deadline=None)
@given(units=st.integers(1, 12), cells=st.integers(1, 4), per_group=st.integers(1, 4),
       fraction=st.floats(0.05, 1.2), window=st.integers(0, 4), seed=st.integers(0, 999))
def test_the_kept_tokens_are_always_adapttokens_and_each_merged_row_is_a_mean_of_candidates(
        units, cells, per_group, fraction, window, seed):
    layout = VideoLayout(num_units=units, grid_h=1, grid_w=cells)
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(cells, 6, generator=gen)  # near-duplicates everywhere: each cell barely changes
    features = base.repeat(units, 1) + 0.1 * torch.randn(layout.num_tokens, 6, generator=gen)
    scores = torch.rand(layout.num_tokens, generator=gen)
    budget = max(1, round(fraction * layout.num_tokens))
    groups = evidence(features, scores, budget, layout, per_group)
    plain, merged = both(groups, layout, budget=budget, dedup_window=window)
    assert torch.equal(plain.kept_token_ids, merged.kept_token_ids)
    for token, row in zip(merged.merged_ids.tolist(), merged.merged_features):
        # the mean includes the token itself and at least one other candidate of its cell
        assert not torch.allclose(row, features[token])
        same_cell = features[layout.cell_of(torch.arange(layout.num_tokens)) == layout.cell_of(torch.tensor(token))]
        assert torch.all(row <= same_cell.max(0).values + 1e-5) and torch.all(row >= same_cell.min(0).values - 1e-5)


def test_merge_roots_follow_each_chain_to_its_end():
    partner = torch.tensor([2, -1, 4, -1, -1, 1])
    assert merge_roots(partner).tolist() == [4, 1, 4, 3, 4, 1]
