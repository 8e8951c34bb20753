"""`attention-topk`: equal budget per group, top tokens by cross-modal attention (FlexSelect-style)."""

from ..allocation import allocate_equally
from ..layout import GroupEvidence, Selection, VideoLayout
from ..registry import SELECTORS
from .base import Selector, sorted_ids, top_by_score


@SELECTORS.register(
    "attention-topk",
    summary="equal budget per group, top tokens by attention (FlexSelect-style baseline)",
)
class AttentionTopKSelector(Selector):
    reads = ("budget",)

    def select(self, layout: VideoLayout, groups: list[GroupEvidence]) -> Selection:
        budgets = allocate_equally(self.config.budget, [g.num_tokens for g in groups])
        return Selection(sorted_ids([top_by_score(g, b) for g, b in zip(groups, budgets)]), budgets)
