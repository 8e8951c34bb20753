"""`full`: no selection; every visual token reaches the language model (the unmodified baseline)."""

import torch

from ..layout import GroupEvidence, Selection, VideoLayout
from ..registry import SELECTORS
from .base import Selector


@SELECTORS.register("full", summary="no selection: every visual token (ignores the budget)")
class FullSelector(Selector):
    needs_group_pass = False
    reads = ()
    exact_budget = False  # every token, whatever the budget

    def select(self, layout: VideoLayout, groups: list[GroupEvidence]) -> Selection:
        return Selection(torch.arange(layout.num_tokens), [g.num_tokens for g in groups])
