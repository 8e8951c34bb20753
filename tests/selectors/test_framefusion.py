"""`framefusion`: tokens like the same cell of the previous unit merge into the run's earliest token (the mean of
the run's features, at its position), then the most attended tokens are kept."""

from __future__ import annotations

import torch

from adapttoken_plugin import SELECTORS, AdaptTokenConfig
from adapttoken_plugin.layout import GroupEvidence, VideoLayout
from adapttoken_plugin.selectors.framefusion import merge_runs
from adapttoken_plugin.similarity import same_cell_previous_similarity

LAYOUT = VideoLayout(num_units=5, grid_h=2, grid_w=2)  # 4 cells, 20 tokens


def evidence(scores: torch.Tensor) -> list[GroupEvidence]:
    """One group holding every unit, with these (20,) scores."""
    return [GroupEvidence(0, torch.arange(5), torch.arange(20), scores=scores, entropy=0.5,
                          candidate_ids=torch.argsort(scores, descending=True, stable=True))]


def select(features: torch.Tensor, scores: torch.Tensor, budget: int, **settings):
    config = AdaptTokenConfig(selector="framefusion", budget=budget, **settings)
    return SELECTORS.get("framefusion")(config).select(LAYOUT, evidence(scores), features=features)


def video_with_a_still_cell(seed: int = 0) -> torch.Tensor:
    """(20, 8) orthogonal-ish random rows, except cell 1, which barely changes over units 1..4 (a run of 4 tokens:
    5, 9, 13, 17) after something else at unit 0."""
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(20, 8, generator=gen)
    still = torch.randn(8, generator=gen)
    for token in (5, 9, 13, 17):
        features[token] = still + 0.01 * torch.randn(8, generator=gen)
    return features


def test_a_run_merges_into_its_earliest_token_as_the_mean_of_its_features():
    features = video_with_a_still_cell()
    scores = torch.linspace(0.0, 1.0, 20)
    selection = select(features, scores, budget=17)  # 3 tokens to remove: the run's three later tokens merge
    assert selection.kept_token_ids.tolist() == [t for t in range(20) if t not in (9, 13, 17)]
    assert selection.merged_ids.tolist() == [5]
    assert torch.allclose(selection.merged_features[0], features[[5, 9, 13, 17]].mean(0), atol=1e-6)


def test_merging_stops_at_what_the_budget_needs_most_similar_first():
    features = video_with_a_still_cell()
    similarity = same_cell_previous_similarity(features, LAYOUT)
    one = merge_runs(similarity, LAYOUT, threshold=0.6, count=1)
    merged = [t for t in range(20) if int(one[t]) != t]
    assert len(merged) == 1 and merged[0] in (9, 13, 17)
    assert merged[0] == max((9, 13, 17), key=lambda t: float(similarity[t]))
    assert torch.equal(merge_runs(similarity, LAYOUT, threshold=0.6, count=0), torch.arange(20))


def test_what_is_left_is_ranked_by_attention_a_merged_token_by_its_members_mean():
    features = video_with_a_still_cell()
    scores = torch.zeros(20)
    scores[[0, 2, 3]] = 0.9  # three unmerged tokens are clearly attended
    scores[[5, 9, 13, 17]] = torch.tensor([0.2, 0.9, 0.9, 0.9])  # the run: mean 0.725, though 5 alone scores 0.2
    selection = select(features, scores, budget=4)
    assert selection.kept_token_ids.tolist() == [0, 2, 3, 5]
    assert selection.merged_ids.tolist() == [5]
    scores[[9, 13, 17]] = 0.1  # now the run's mean (0.125) loses to an unmerged token of score 0.2
    scores[11] = 0.2
    assert select(features, scores, budget=4).kept_token_ids.tolist() == [0, 2, 3, 11]


def test_nothing_merges_at_full_budget_or_below_the_threshold():
    features = video_with_a_still_cell()
    full = select(features, torch.rand(20), budget=20)
    assert full.kept_token_ids.tolist() == list(range(20)) and len(full.merged_ids) == 0
    strict = select(features, torch.linspace(0.0, 1.0, 20), budget=17, framefusion_threshold=1.0)
    assert len(strict.merged_ids) == 0  # a near-still cell is not identical: only pruning by attention
    assert strict.kept_token_ids.tolist() == list(range(3, 20))
