"""`random`: a seeded uniform sample of `budget` tokens from the whole video.

The stage gives each question its own seed (`Stage.selector_for`: the `seed` setting mixed with the question's
token ids and the video's content key), so two videos of the same length get different subsets while a rerun
of the same question draws the same one.
"""

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
