"""`uniform`: evenly spaced frame units, all of their tokens, as many as the budget holds; what the budget
has left after the last whole unit (less than one unit's tokens) goes to evenly spaced tokens of the other
units, so `uniform` keeps exactly min(budget, visual tokens) like every ranked selector."""

import torch

from ..layout import GroupEvidence, Selection, VideoLayout
from ..registry import SELECTORS
from .base import Selector, top_up


@SELECTORS.register("uniform", summary="evenly spaced frame units, all their tokens, up to the budget")
class UniformSelector(Selector):
    needs_group_pass = False
    reads = ("budget",)

    def select(self, layout: VideoLayout, groups: list[GroupEvidence]) -> Selection:
        count = min(layout.num_units, max(1, self.config.budget // layout.tokens_per_unit))
        # centre of each of `count` equal segments: symmetric coverage of the whole video
        units = torch.unique(((torch.arange(count) + 0.5) * layout.num_units / count).long())
        kept = layout.token_ids_of_units(units)[: self.config.budget]  # a budget under one unit: part of it
        kept = top_up(kept, layout, self.config.budget)
        return Selection(kept, [int(torch.isin(g.token_ids, kept).sum()) for g in groups])
