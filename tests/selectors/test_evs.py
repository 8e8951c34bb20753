"""`evs`: the first frame unit is kept, then what changed at each cell; repeats go first."""

from __future__ import annotations

import math

import torch

from adapttoken_plugin import SELECTORS, AdaptTokenConfig
from adapttoken_plugin.layout import GroupEvidence, VideoLayout
from adapttoken_plugin.selectors.evs import evs_dissimilarity

LAYOUT = VideoLayout(num_units=6, grid_h=2, grid_w=2)  # 4 tokens per unit, 24 in all


def select(features: torch.Tensor, budget: int, layout: VideoLayout = LAYOUT, **settings) -> torch.Tensor:
    config = AdaptTokenConfig(selector="evs", budget=budget, **settings)
    groups = [GroupEvidence(0, torch.arange(layout.num_units), torch.arange(layout.num_tokens))]
    return SELECTORS.get("evs")(config).select(layout, groups, features=features).kept_token_ids


def frozen_video(seed: int = 0) -> torch.Tensor:
    """(24, 8): every unit repeats unit 0 exactly."""
    first = torch.randn(LAYOUT.tokens_per_unit, 8, generator=torch.Generator().manual_seed(seed))
    return first.repeat(LAYOUT.num_units, 1)


def test_a_frozen_video_keeps_nothing_after_the_first_unit_within_one_unit_of_budget():
    for budget in range(1, LAYOUT.tokens_per_unit + 1):
        assert LAYOUT.unit_of(select(frozen_video(), budget)).tolist() == [0] * budget


def test_what_changed_is_kept_and_repeats_only_top_up():
    features = torch.eye(8)[:4].repeat(LAYOUT.num_units, 1)  # frozen; one-hot rows: a repeat's cosine is exactly 1
    onsets = [6, 13, 22]  # one cell in each of three later units shows something new, and keeps showing it
    for token, row in zip(onsets, torch.eye(8)[4:7]):
        features[token::LAYOUT.tokens_per_unit] = row
    assert select(features, LAYOUT.tokens_per_unit + 3).tolist() == [0, 1, 2, 3, *onsets]
    # a larger budget tops up with repeats (all exactly like the unit before: ties to the lower token id)
    assert select(features, LAYOUT.tokens_per_unit + 5).tolist() == [0, 1, 2, 3, 4, 5, *onsets]


def drifting_video(step: float, jump: float) -> torch.Tensor:
    """(12 units x 2 cells, 2): cell 0 turns by `step` radians per unit (a slow drift), cell 1 is still except one
    sudden turn of `jump` radians at unit 6."""
    layout = VideoLayout(num_units=12, grid_h=1, grid_w=2)
    features = torch.zeros(layout.num_tokens, 2)
    for unit in range(12):
        features[unit * 2] = torch.tensor([math.cos(step * unit), math.sin(step * unit)])
        angle = jump if unit >= 6 else 0.0
        features[unit * 2 + 1] = torch.tensor([math.cos(angle), math.sin(angle)])
    return features


def test_below_one_the_threshold_lets_a_slow_drift_accumulate_against_its_reference():
    layout = VideoLayout(num_units=12, grid_h=1, grid_w=2)
    features = drifting_video(step=0.1, jump=0.25)  # 1 - cos: 0.005 per drift step, 0.031 for the jump
    evs = evs_dissimilarity(features, layout, threshold=1.0)
    assert torch.allclose(evs[2::2], torch.full((11,), 1 - math.cos(0.1)), atol=1e-6)  # unit to unit: negligible
    chained = evs_dissimilarity(features, layout, threshold=0.9)
    assert float(chained[2::2].max()) > 0.1 - 1e-6  # against where the drift began: it adds up until it counts
    # EVS keeps the sudden turn as the one token after the first unit; the chained reference keeps the drift
    assert select(features, 3, layout).tolist() == [0, 1, 13]
    assert 13 not in select(features, 3, layout, evs_threshold=0.9).tolist()
