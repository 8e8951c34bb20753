"""`adapttoken-merge`: AdaptToken whose de-duplication merges a removed near-duplicate into the token it duplicates
instead of dropping it (an ablation of AdaptToken step 7, in the spirit of the merging methods: FrameFusion,
DyCoke, ToMe-style averaging).

Rule: exactly `adapttoken`'s selection (entropy-weighted budgets, the groups' top ceil(overselect * B_g)
candidates, location-aware de-duplication down to min(budget, tokens)), so the kept ids are the same. What changes
is the features: when de-duplication removes the lower-scored token of a redundant pair (same spatial cell,
units at most `dedup_window` apart, most similar pair first), that token is merged into the pair's other token;
if that one is removed by a later pair, everything merged into it follows it. Each kept token that absorbed others
reaches the final pass at its own position (the higher-scored token of each pair, not necessarily the earliest)
with the plain mean of its own and its members' features, every member weighing the same (as FrameFusion and
DyCoke average; a score-weighted mean would let attention, which already chose the survivor, count twice).
Tokens trimmed because the redundant pairs ran out are dropped, not merged (they duplicate nothing); with
`dedup=False`, or when nothing needs removing (a budget of every token), nothing merges and the answer is
`adapttoken`'s.

Departs from the original: AdaptToken drops the removed token. The mean is over all feature columns, so
Qwen3-VL's DeepStack levels are averaged with the token's own features; similarity still reads
`layout.similarity_dims`.

Memory: as `adapttoken` (the pooled candidates, at most ceil(overselect * budget) rows of D, and the pairwise
similarities within each cell), plus the (M, D) merged features, M <= budget.
"""

from __future__ import annotations

import math

import torch

from ..allocation import allocate_budget
from ..dedup import location_aware_dedup_with_partners
from ..layout import GroupEvidence, Selection, VideoLayout
from ..registry import SELECTORS
from .adapttoken import AdaptTokenSelector, _scores_of
from .base import top_by_score


def merge_roots(partner: torch.Tensor) -> torch.Tensor:
    """(K,) int64 index of the token each candidate ends up in: follow `partner` (K,) (-1: stays itself) until a
    token that was never merged away. Partners point at tokens that were kept when the pair was removed, so the
    chains have no cycles; pointer jumping resolves them in O(K log K)."""
    root = torch.where(partner >= 0, partner, torch.arange(len(partner)))
    while True:
        jumped = root[root]
        if torch.equal(jumped, root):
            return root
        root = jumped


@SELECTORS.register("adapttoken-merge",
                    summary="AdaptToken whose de-duplication merges each removed near-duplicate into its pair")
class AdaptTokenMergeSelector(AdaptTokenSelector):
    merges = True

    def select(self, layout: VideoLayout, groups: list[GroupEvidence]) -> Selection:
        cfg = self.config
        if not cfg.dedup:  # nothing is removed as a duplicate, so nothing merges
            return super().select(layout, groups)
        budgets = allocate_budget(cfg.budget, [g.entropy for g in groups], [g.num_tokens for g in groups], cfg.tau)
        offered = [min(g.num_tokens, math.ceil(cfg.overselect * b)) for g, b in zip(groups, budgets)]
        parts = [top_by_score(g, k) for g, k in zip(groups, offered)]
        ids = torch.cat(parts)
        features = torch.cat([g.candidate_features[:k] for g, k in zip(groups, offered)])  # (K, D) every column
        keep, partner = location_aware_dedup_with_partners(
            features=features[:, : layout.similarity_dims],
            scores=torch.cat([_scores_of(g, i) for g, i in zip(groups, parts)]),
            units=layout.unit_of(ids), cells=layout.cell_of(ids),
            groups=torch.cat([torch.full((k,), n) for n, k in enumerate(offered)]),
            group_budgets=torch.tensor(budgets), target=sum(budgets), window=cfg.dedup_window,
        )
        root = merge_roots(partner)
        members = torch.bincount(root, minlength=len(ids))
        merged_rows = keep[members[keep] > 1]  # kept candidates that absorbed at least one other
        sums = torch.zeros(len(ids), features.shape[1], dtype=torch.float32, device=features.device)
        sums.index_add_(0, root.to(features.device), features.float())
        merged = (sums[merged_rows.to(features.device)] / members[merged_rows].to(sums)[:, None]).to(features.dtype)
        order = torch.argsort(ids[merged_rows])  # merged ids ascending, like the kept ids
        return Selection(torch.sort(ids[keep]).values, budgets, merged_ids=ids[merged_rows][order],
                         merged_features=merged[order.to(merged.device)])
