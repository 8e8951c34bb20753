"""`divprune`: greedy max-min diversity, computed with a running minimum instead of the N x N distance matrix."""

from __future__ import annotations

import itertools

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adapttoken_plugin import SELECTORS, AdaptTokenConfig
from adapttoken_plugin.layout import GroupEvidence, VideoLayout
from adapttoken_plugin.selectors.divprune import max_min_diverse


def min_pairwise_distance(x: torch.Tensor) -> float:
    """The smallest cosine distance between two rows of `x` (K, D)."""
    unit = torch.nn.functional.normalize(x, dim=-1)
    return min(1.0 - float(unit[i] @ unit[j]) for i, j in itertools.combinations(range(len(x)), 2))


def clustered(sizes: list[int], dim: int = 16, spread: float = 0.05, seed: int = 0) -> torch.Tensor:
    """Rows in tight clusters around random directions, one cluster per size; the biggest cluster has the largest
    norms (what a top-k by norm would take)."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for c, size in enumerate(sizes):
        centre = torch.randn(dim, generator=gen)
        scale = 3.0 if c == 0 else 1.0
        rows.append(scale * (centre + spread * torch.randn(size, dim, generator=gen)))
    return torch.cat(rows)


def test_the_kept_set_is_more_diverse_than_top_norm_or_random_sets():
    layout = VideoLayout(num_units=8, grid_h=2, grid_w=2)  # 32 tokens
    features = clustered([12, 8, 6, 4, 2])[torch.randperm(32, generator=torch.Generator().manual_seed(1))]
    config = AdaptTokenConfig(selector="divprune", budget=5)
    groups = [GroupEvidence(0, torch.arange(8), torch.arange(32))]
    kept = SELECTORS.get("divprune")(config).select(layout, groups, features=features).kept_token_ids
    diverse = min_pairwise_distance(features[kept])
    assert diverse > 0.5  # one token of each of the five clusters
    assert diverse > min_pairwise_distance(features[torch.topk(features.norm(dim=-1), 5).indices])
    for seed in range(20):
        drawn = torch.randperm(32, generator=torch.Generator().manual_seed(seed))[:5]
        assert diverse >= min_pairwise_distance(features[drawn])
    # a bf16 feature store (products in bf16) still finds one token of each cluster
    low = SELECTORS.get("divprune")(config).select(layout, groups, features=features.bfloat16()).kept_token_ids
    assert min_pairwise_distance(features[low]) > 0.5


def assert_greedy(features: torch.Tensor, picked: list[int], tol: float = 1e-5) -> None:
    """`picked` is a max-min greedy order on the full N x N matrix: the first row is (within float tolerance) the
    farthest from the mean direction, each next one the farthest from its nearest picked row, none twice."""
    unit = torch.nn.functional.normalize(features.double(), dim=-1)
    mean = unit.mean(0)
    from_mean = 1.0 - unit @ mean / mean.norm().clamp_min(1e-12)
    assert float(from_mean[picked[0]]) >= float(from_mean.max()) - tol
    matrix = 1.0 - unit @ unit.T
    for step in range(1, len(picked)):
        nearest = matrix[:, picked[:step]].min(1).values
        nearest[picked[:step]] = float("-inf")
        assert picked[step] not in picked[:step]
        assert float(nearest[picked[step]]) >= float(nearest.max()) - tol, step


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 30), count=st.integers(1, 29), chunk=st.integers(1, 8), seed=st.integers(0, 999))
def test_the_running_minimum_is_the_greedy_on_the_whole_matrix_in_any_chunking(n, count, chunk, seed):
    features = torch.randn(n, 6, generator=torch.Generator().manual_seed(seed))
    count = min(count, n - 1)  # count == n is the shortcut "every row"
    picked = max_min_diverse(features, count, chunk=chunk).tolist()
    assert len(picked) == count
    assert_greedy(features, picked)
    assert picked == max_min_diverse(features, count).tolist()  # the chunking changes nothing


def test_duplicates_are_never_picked_twice_and_every_row_is_reachable():
    features = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert sorted(max_min_diverse(features, 3).tolist()) == [0, 1, 3]
    assert max_min_diverse(features, 4).tolist() == [0, 1, 2, 3]
