"""`random`: a seeded uniform sample of `budget` tokens from the whole video."""

import torch

from ..layout import GroupEvidence, Selection, VideoLayout
from ..registry import SELECTORS
from .base import Selector


@SELECTORS.register("random", summary="seeded random tokens up to the budget")
class RandomSelector(Selector):
    needs_group_pass = False
    reads = ("budget", "seed")

    def select(self, layout: VideoLayout, groups: list[GroupEvidence]) -> Selection:
        generator = torch.Generator().manual_seed(self.config.seed)
        count = min(self.config.budget, layout.num_tokens)
        kept = torch.sort(torch.randperm(layout.num_tokens, generator=generator)[:count]).values
        return Selection(kept, [int(torch.isin(g.token_ids, kept).sum()) for g in groups])
