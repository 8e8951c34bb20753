"""`adapttoken`: entropy-guided budget allocation, attention ranking, location-aware de-duplication.

B_g = B * softmax(-H / tau)_g over the groups' answer entropies; each group offers its top
ceil(overselect * B_g) tokens; redundant tokens are removed until exactly min(B, all tokens) remain.
"""

import math

import torch

from ..allocation import allocate_budget, allocation_upper_bounds
from ..dedup import location_aware_dedup
from ..layout import GroupEvidence, Selection, VideoLayout
from ..registry import SELECTORS
from .base import Selector, sorted_ids, top_by_score


@SELECTORS.register(
    "adapttoken",
    summary="entropy-weighted budget per group, top `overselect`x tokens, location-aware de-duplication",
)
class AdaptTokenSelector(Selector):
    reads = ("budget", "tau", "overselect", "dedup", "dedup_window")

    def candidate_bounds(self, seen: list[GroupEvidence]) -> list[int]:
        """The allocation can only shrink a seen group's share as groups arrive (`allocation_upper_bounds`)."""
        return _bounds(self.config.budget, [-g.entropy / self.config.tau for g in seen], seen, self.config.overselect)

    def select(self, layout: VideoLayout, groups: list[GroupEvidence]) -> Selection:
        cfg = self.config
        capacities = [g.num_tokens for g in groups]
        budgets = allocate_budget(cfg.budget, [g.entropy for g in groups], capacities, cfg.tau)
        target = sum(budgets)
        if not cfg.dedup:
            return Selection(sorted_ids([top_by_score(g, b) for g, b in zip(groups, budgets)]), budgets)
        offered = [min(c, math.ceil(cfg.overselect * b)) for c, b in zip(capacities, budgets)]
        ids = [top_by_score(g, k) for g, k in zip(groups, offered)]
        feats = torch.cat([g.candidate_features[:k, :layout.similarity_dims] for g, k in zip(groups, offered)])
        scores = torch.cat([_scores_of(g, i) for g, i in zip(groups, ids)])
        group_of = torch.cat([torch.full((k,), n) for n, k in enumerate(offered)])
        all_ids = torch.cat(ids)
        keep = location_aware_dedup(
            features=feats, scores=scores, units=layout.unit_of(all_ids), cells=layout.cell_of(all_ids),
            groups=group_of, group_budgets=torch.tensor(budgets), target=target, window=cfg.dedup_window,
        )
        return Selection(torch.sort(all_ids[keep]).values, budgets)


def _bounds(budget: int, log_weights: list[float], groups: list[GroupEvidence], overselect: float) -> list[int]:
    """Candidates each seen group can still be offered: ceil(overselect x) its allocation's upper bound."""
    capacities = [g.num_tokens for g in groups]
    return [min(c, math.ceil(overselect * b))
            for c, b in zip(capacities, allocation_upper_bounds(budget, log_weights, capacities))]


def _scores_of(group: GroupEvidence, token_ids: torch.Tensor) -> torch.Tensor:
    """Scores of some of a group's tokens (the group's token ids are ascending)."""
    return group.scores[torch.searchsorted(group.token_ids, token_ids)].float()
