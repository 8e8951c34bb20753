import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adapttoken_plugin.dedup import location_aware_dedup


def _case(features, scores, units, cells, groups, budgets, target, window=2):
    return location_aware_dedup(
        torch.tensor(features, dtype=torch.float32), torch.tensor(scores, dtype=torch.float32),
        torch.tensor(units), torch.tensor(cells), torch.tensor(groups), torch.tensor(budgets), target, window,
    )


def test_drops_the_lower_scored_token_of_the_most_similar_close_pair():
    # tokens 0/1: same cell, adjacent units, identical features -> the pair to break; 1 has the lower score
    # tokens 2/3: same cell, adjacent units, orthogonal features
    feats = [[1, 0], [1, 0], [0, 1], [1, 0]]
    kept = _case(feats, [0.9, 0.2, 0.5, 0.4], [0, 1, 0, 1], [0, 0, 1, 1], [0, 1, 0, 1], [2, 1], target=3)
    assert kept.tolist() == [0, 2, 3]


def test_distant_frames_and_other_cells_are_not_redundant():
    # identical features, but one pair is far apart in time and the other at different cells:
    # no redundant pair, so the excess is trimmed from the group most over its budget, lowest score first
    feats = [[1, 0]] * 4
    kept = _case(feats, [0.9, 0.1, 0.8, 0.7], [0, 10, 0, 0], [0, 0, 1, 2], [0, 0, 1, 1], [1, 2], target=3, window=2)
    assert kept.tolist() == [0, 2, 3]


@given(st.integers(1, 60), st.integers(0, 4), st.data())
@settings(max_examples=100, deadline=None)
def test_exactly_target_tokens_remain(n, window, data):
    target = data.draw(st.integers(0, n))
    g = torch.Generator().manual_seed(n * 7 + window)
    groups = torch.randint(0, 3, (n,), generator=g)
    budgets = torch.bincount(groups, minlength=3)
    # budgets that sum to target, never above what each group holds
    while budgets.sum() > target:
        budgets[int(torch.argmax(budgets))] -= 1
    kept = location_aware_dedup(
        torch.randn(n, 4, generator=g), torch.rand(n, generator=g), torch.randint(0, 6, (n,), generator=g),
        torch.randint(0, 3, (n,), generator=g), groups, budgets, target, window,
    )
    assert len(kept) == target
    assert kept.tolist() == sorted(set(kept.tolist()))
