"""`vidcom2`: a frame unit unlike the others gets more of the budget, and each unit keeps its least redundant
tokens."""

from __future__ import annotations

import torch

from adapttoken_plugin import SELECTORS, AdaptTokenConfig, similarity
from adapttoken_plugin.layout import GroupEvidence, VideoLayout
from adapttoken_plugin.selectors.vidcom2 import low_variance_channels, vidcom2_scores

LAYOUT = VideoLayout(num_units=6, grid_h=3, grid_w=3)  # 9 tokens per unit, 54 in all


def select(features: torch.Tensor, budget: int, layout: VideoLayout = LAYOUT, **settings):
    config = AdaptTokenConfig(selector="vidcom2", budget=budget, **settings)
    groups = [GroupEvidence(0, torch.arange(layout.num_units), torch.arange(layout.num_tokens))]
    return SELECTORS.get("vidcom2")(config).select(layout, groups, features=features)


def per_unit(kept: torch.Tensor, layout: VideoLayout = LAYOUT) -> list[int]:
    return torch.bincount(layout.unit_of(kept), minlength=layout.num_units).tolist()


def test_a_unit_unlike_the_others_gets_more_tokens_than_a_repeated_one():
    gen = torch.Generator().manual_seed(0)
    repeated = torch.randn(9, 16, generator=gen)
    features = repeated.repeat(6, 1)
    features[27:36] = torch.randn(9, 16, generator=gen)  # unit 3 shows another scene, of the same statistics
    counts = per_unit(select(features, 36).kept_token_ids)
    assert sum(counts) == 36
    assert all(counts[3] > c for u, c in enumerate(counts) if u != 3), counts
    # a temperature so high that the softmax is flat: every unit gets the same share again
    assert per_unit(select(features, 36, vidcom2_temperature=1e6).kept_token_ids) == [6] * 6


def test_inside_a_unit_the_tokens_least_like_the_centres_are_kept():
    gen = torch.Generator().manual_seed(1)
    background = torch.randn(16, generator=gen)
    features = background + 0.01 * torch.randn(54, 16, generator=gen)  # every token nearly the same
    outliers = torch.tensor([4, 15, 22, 29, 40, 51])  # one distinct token in each unit
    features[outliers] = torch.randn(6, 16, generator=gen) * 3
    # a flat softmax (very high temperature) gives each unit one token: its outlier
    assert select(features, 6, vidcom2_temperature=1e6).kept_token_ids.tolist() == outliers.tolist()


def test_the_lowest_variance_channels_are_measured():
    layout = VideoLayout(num_units=4, grid_h=1, grid_w=5)
    features = torch.randn(20, 6, generator=torch.Generator().manual_seed(2)) * torch.tensor([5, 0.1, 3, 0.2, 0.3, 9])
    assert low_variance_channels(features, layout, 0.5).tolist() == [1, 3, 4]
    assert low_variance_channels(features, layout, 0.01).tolist() == [1]  # at least one channel


def test_chunked_scores_equal_the_whole_video_at_once(monkeypatch):
    features = torch.randn(54, 16, generator=torch.Generator().manual_seed(3))
    whole = vidcom2_scores(features, LAYOUT, 0.5)
    monkeypatch.setattr(similarity, "CHUNK_TOKENS", 10)  # one unit per chunk
    chunked = vidcom2_scores(features, LAYOUT, 0.5)
    for a, b in zip(whole, chunked):
        assert torch.allclose(a, b, atol=1e-5)
