"""`fastvid`: segments follow scene changes, and each window keeps its density peaks."""

from __future__ import annotations

import torch

from adapttoken_plugin import SELECTORS, AdaptTokenConfig
from adapttoken_plugin.layout import GroupEvidence, VideoLayout
from adapttoken_plugin.selectors.fastvid import density_peak_scores, temporal_segments, unit_transitions


def select(features: torch.Tensor, layout: VideoLayout, budget: int, **settings):
    config = AdaptTokenConfig(selector="fastvid", budget=budget, **settings)
    groups = [GroupEvidence(0, torch.arange(layout.num_units), torch.arange(layout.num_tokens))]
    return SELECTORS.get("fastvid")(config).select(layout, groups, features=features).kept_token_ids


def two_scenes(units: int, cut: int, tokens: int, seed: int = 0) -> torch.Tensor:
    """(units * tokens, 16): units [0, cut) show one scene, [cut, units) another, with a little noise per unit."""
    gen = torch.Generator().manual_seed(seed)
    scenes = torch.randn(2, tokens, 16, generator=gen)
    rows = [scenes[int(u >= cut)] + 0.05 * torch.randn(tokens, 16, generator=gen) for u in range(units)]
    return torch.cat(rows)


def test_the_segments_are_the_scenes():
    layout = VideoLayout(num_units=10, grid_h=2, grid_w=2)
    transitions = unit_transitions(two_scenes(10, 6, 4), layout)
    assert temporal_segments(transitions, threshold=0.9, min_segments=1) == [(0, 6), (6, 10)]
    assert temporal_segments(transitions, threshold=-1.0, min_segments=2) == [(0, 6), (6, 10)]  # c - 1 lowest
    # c = 4 adds the two least similar transitions inside the scenes; the scene change stays a cut
    assert (5, 6) not in temporal_segments(transitions, threshold=0.9, min_segments=4)
    assert len(temporal_segments(transitions, threshold=0.9, min_segments=4)) == 4
    assert temporal_segments(transitions[:0], threshold=0.9, min_segments=8) == [(0, 1)]  # one unit


def test_each_scene_gets_a_share_proportional_to_its_length():
    layout = VideoLayout(num_units=10, grid_h=2, grid_w=2)
    kept = select(two_scenes(10, 6, 4), layout, budget=10, fastvid_min_segments=1)
    assert torch.bincount((layout.unit_of(kept) >= 6).long()).tolist() == [6, 4]


def clusters(sizes: list[int], seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Rows in tight clusters (one per size) and, for each cluster, its row indices."""
    gen = torch.Generator().manual_seed(seed)
    rows, members, start = [], [], 0
    for size in sizes:
        centre = torch.randn(16, generator=gen)
        rows.append(centre + 0.05 * torch.randn(size, 16, generator=gen))
        members.append(torch.arange(start, start + size))
        start += size
    order = torch.randperm(start, generator=gen)  # clusters spread over the window
    inverse = torch.argsort(order)
    return torch.cat(rows)[order], [inverse[m] for m in members]


def test_density_peaks_are_one_token_per_cluster_before_a_second_of_any():
    features, members = clusters([7, 5, 3, 1])
    top = torch.argsort(density_peak_scores(features, k=2), descending=True)[:3]
    assert sorted(next(c for c, m in enumerate(members) if int(t) in m.tolist()) for t in top) == [0, 1, 2]
    # and the peak of a cluster is its densest token (closest to its 2 nearest neighbours), not an outlier of it
    rows = torch.nn.functional.normalize(features, dim=-1)
    distance = torch.cdist(rows, rows) + torch.eye(len(rows)) * 9
    crowding = (torch.topk(distance, 2, largest=False).values ** 2).mean(1)
    for t in top.tolist():
        cluster = next(m for m in members if t in m.tolist())
        assert t == int(cluster[torch.argmin(crowding[cluster])])


def test_a_window_keeps_its_density_peaks():
    layout = VideoLayout(num_units=4, grid_h=2, grid_w=2)  # one window of 16 tokens (anchor step 4)
    features, members = clusters([7, 5, 3, 1], seed=3)
    kept = select(features, layout, budget=3, fastvid_min_segments=1, fastvid_segment_threshold=-1.0, fastvid_knn=2)
    assert sorted(next(c for c, m in enumerate(members) if t in m.tolist()) for t in kept.tolist()) == [0, 1, 2]


def test_equal_densities_are_broken_by_token_id():
    scores = density_peak_scores(torch.eye(4), k=1)  # four mutually equidistant tokens: the same density
    assert int(torch.argmax(scores)) == 0  # the densest by the tie rule is the lower id; it alone has delta = max
