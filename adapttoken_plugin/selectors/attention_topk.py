"""`attention-topk`: equal budget per group, top tokens by cross-modal attention (FlexSelect-style).

When the budget does not split evenly, the tokens left after the equal floor go to the groups whose next
candidate scores highest (so 4 tokens over 16 groups are the 4 best groups' best tokens, not groups 0-3's).
"""

import torch

from ..allocation import allocate_equally, allocation_upper_bounds
from ..layout import GroupEvidence, Selection, VideoLayout
from ..registry import SELECTORS
from .base import Selector, sorted_ids, top_by_score


@SELECTORS.register(
    "attention-topk",
    summary="equal budget per group, top tokens by attention (FlexSelect-style baseline)",
)
class AttentionTopKSelector(Selector):
    reads = ("budget",)

    def candidate_bounds(self, seen: list[GroupEvidence]) -> list[int]:
        """An equal split can only shrink a seen group's share as groups arrive."""
        capacities = [g.num_tokens for g in seen]
        return allocation_upper_bounds(self.config.budget, [0.0] * len(seen), capacities)

    def select(self, layout: VideoLayout, groups: list[GroupEvidence]) -> Selection:
        capacities = [g.num_tokens for g in groups]
        # the tokens the equal floor leaves go to the groups whose next candidate scores highest (not to the
        # lowest group ids: with fewer tokens than groups that would keep the first groups only)
        floor = self.config.budget // max(1, len(groups))
        priority = [float(torch.sort(g.scores.float(), descending=True).values[floor]) if floor < g.num_tokens
                    else float("-inf") for g in groups]
        budgets = allocate_equally(self.config.budget, capacities, priority)
        return Selection(sorted_ids([top_by_score(g, b) for g, b in zip(groups, budgets)]), budgets)
