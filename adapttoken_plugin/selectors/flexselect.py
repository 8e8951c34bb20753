"""`flexselect`: FlexSelect's rule on the same stage (Zhang et al., "FlexSelect: A Flexible Token Selection
Approach for Efficient Long Video Understanding", NeurIPS 2025, arXiv 2506.00993).

Rule: the group passes AdaptToken runs (interleaved groups of at most `frames_per_group` frames, the
text-to-visual attention at one reference layer, `scoring_layer`), then ONE global top-k over every group's
scores: no entropy, no per-group budget, no de-duplication; the kept tokens keep their original positions.

Departs from the original: FlexSelect also trains a small ranking model to stand in for the reference
layer (its "lightweight selector"); this is the training-free reference-layer variant. Scores come from the
stage's recomputed attention rows (max over heads and text queries by default, `score_reduce`), not from an
eager-attention pass.
"""

from ..layout import GroupEvidence, Selection, VideoLayout
from ..registry import SELECTORS
from .base import Selector, global_top_k


@SELECTORS.register("flexselect", summary="FlexSelect: one global top-k over every group's attention scores")
class FlexSelectSelector(Selector):
    reads = ("budget",)

    def candidate_bounds(self, seen: list[GroupEvidence]) -> list[int]:
        """A candidate outside the top `budget` of the groups seen so far never enters the final top-k (later
        groups only raise the bar); within a group the top-k takes a prefix of its ranked candidates."""
        return global_top_k(seen, self.config.budget).group_budgets

    def select(self, layout: VideoLayout, groups: list[GroupEvidence]) -> Selection:
        return global_top_k(groups, self.config.budget)
