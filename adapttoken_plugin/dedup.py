"""Location-aware removal of redundant tokens (AdaptToken step 7).

A candidate is redundant when a token at the same spatial cell (h, w) in a temporally close frame
unit has near-identical features. Pairs are visited from the most similar down and the lower-scored
token of each pair is dropped, until the target count remains. If the pairs run out first, the
excess is trimmed from the groups that hold the most tokens above their allocated budget, lowest
score first, so the result always has exactly `target` tokens.
"""

from __future__ import annotations

import torch


def location_aware_dedup(
    features: torch.Tensor,
    scores: torch.Tensor,
    units: torch.Tensor,
    cells: torch.Tensor,
    groups: torch.Tensor,
    group_budgets: torch.Tensor,
    target: int,
    window: int,
) -> torch.Tensor:
    """Choose `target` of N candidates.

    Args:
        features: (N, D) token features (projector output); compared by cosine similarity.
        scores: (N,) attention scores; the lower-scored token of a redundant pair is dropped.
        units: (N,) global frame-unit index of each token.
        cells: (N,) spatial cell of each token (row * grid_w + col).
        groups: (N,) group index of each token (0..G-1).
        group_budgets: (G,) tokens allocated to each group; used only to trim when pairs run out.
        target: number of tokens to keep, 0 <= target <= N.
        window: two same-cell tokens are temporally close when their units differ by <= window.
    Returns:
        (target,) int64 indices into the candidates, sorted ascending.
    """
    return location_aware_dedup_with_partners(features, scores, units, cells, groups, group_budgets, target,
                                              window)[0]


def location_aware_dedup_with_partners(
    features: torch.Tensor,
    scores: torch.Tensor,
    units: torch.Tensor,
    cells: torch.Tensor,
    groups: torch.Tensor,
    group_budgets: torch.Tensor,
    target: int,
    window: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`location_aware_dedup`, also saying which token each removed near-duplicate was paired with (what a
    merging variant merges it into). Arguments as `location_aware_dedup`.

    Returns:
        kept: (target,) int64 indices into the candidates, sorted ascending.
        partner: (N,) int64: for a token dropped as the lower-scored of a redundant pair, the index of the pair's
            other token (kept at that moment; it may be dropped by a later pair); -1 for the others (kept, or
            trimmed because the pairs ran out).
    """
    n = features.shape[0]
    if not 0 <= target <= n:
        raise ValueError(f"target={target} must be in [0, {n}]")
    keep = torch.ones(n, dtype=torch.bool)
    partner = torch.full((n,), -1, dtype=torch.long)
    excess = n - target
    if excess > 0:
        excess -= _drop_redundant_pairs(features, scores, units, cells, window, keep, excess, partner)
    if excess > 0:
        _trim_over_budget(scores, groups, group_budgets, keep, excess)
    return keep.nonzero().flatten(), partner


def _drop_redundant_pairs(features, scores, units, cells, window, keep, excess, partner) -> int:
    """Drop up to `excess` tokens, most similar same-cell pair first, noting each one's pair in `partner`;
    returns how many were dropped."""
    normed = torch.nn.functional.normalize(features.float(), dim=-1)
    pair_i, pair_j, sims = [], [], []
    order = torch.argsort(cells * (int(units.max()) + 1) + units) if len(cells) else cells
    sorted_cells = cells[order]
    bounds = torch.unique_consecutive(sorted_cells, return_counts=True)[1].cumsum(0)
    start = 0
    for end in bounds.tolist():
        idx = order[start:end]
        start = end
        if len(idx) < 2:
            continue
        close = (units[idx][:, None] - units[idx][None, :]).abs() <= window
        close = torch.triu(close, diagonal=1)
        a, b = close.nonzero(as_tuple=True)
        if len(a):
            pair_i.append(idx[a])
            pair_j.append(idx[b])
            sims.append((normed[idx[a]] * normed[idx[b]]).sum(-1))
    if not sims:
        return 0
    pair_i, pair_j, sims = torch.cat(pair_i), torch.cat(pair_j), torch.cat(sims)
    dropped = 0
    for p in torch.argsort(sims, descending=True, stable=True).tolist():
        i, j = int(pair_i[p]), int(pair_j[p])
        if not (keep[i] and keep[j]):
            continue
        # lower score goes; on a tie the later token goes, so the result is deterministic
        loser = j if (scores[j] < scores[i] or (scores[j] == scores[i] and j > i)) else i
        keep[loser] = False
        partner[loser] = i + j - loser
        dropped += 1
        if dropped == excess:
            break
    return dropped


def _trim_over_budget(scores, groups, group_budgets, keep, excess) -> None:
    """Drop `excess` kept tokens: repeatedly from the group furthest above its budget, lowest score first."""
    n_groups = len(group_budgets)
    kept_per_group = torch.bincount(groups[keep], minlength=n_groups)
    for _ in range(excess):
        over = kept_per_group - group_budgets
        g = int(torch.argmax(over))  # first group among the most over budget
        members = (keep & (groups == g)).nonzero().flatten()
        loser = members[torch.argmin(scores[members])]
        keep[loser] = False
        kept_per_group[g] -= 1
