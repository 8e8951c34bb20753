"""`evs`: temporal pruning of tokens that repeat the same cell of an earlier frame unit (Bagrov et al., "Efficient
Video Sampling: Pruning Temporally Redundant Tokens for Faster VLM Inference", arXiv 2510.14624, 2025; DyCoke,
Tao et al., CVPR 2025, prunes the same kind of temporal duplicate).

Rule: every token of the first frame unit is kept (the temporal anchor). Every later token is scored by its
dissimilarity 1 - cos(token, reference) to the reference of its spatial cell, and the kept tokens are the first
unit plus the most dissimilar others, exactly min(budget, tokens) in all (ties to the lower token id): tokens nearly
identical to what their cell already showed go first, and when the budget is larger than what changed, the
top-up takes the least similar of them. The reference of a cell is the last token at that cell that was not a
duplicate, a duplicate being a token whose similarity to the reference is above `evs_threshold`. At the default
1.0 nothing is a duplicate, so the reference is always the same cell of the previous unit: EVS's rule. Below 1 a
run of near-identical tokens is compared with where the run began, so a slow drift (a pan, a fade) accumulates
until it counts, where frame-to-frame differences would each look negligible (the chaining DyCoke's merging
windows approximate).

Departs from the original: EVS compares RGB patches (L1 difference) before the vision tower, or in vLLM the
vision tower's output embeddings; here the comparison is the cosine of the model's visual features (the
projector's output, `layout.similarity_dims` columns) of one frame unit (two frames for Qwen2/2.5-VL) against the
unit before. EVS prunes a ratio q of the tokens after the first frame; here the count is the budget. DyCoke merges
(averages) pruned tokens and also prunes the KV cache while decoding; this drops them.

Memory: one chunk of frame units and one reference unit, O(CHUNK_TOKENS x D' + T x D') floats, plus the (N,)
dissimilarities; time O(N x D').
"""

from __future__ import annotations

import torch

from ..layout import GroupEvidence, Selection, VideoLayout
from ..registry import SELECTORS
from ..similarity import normalized_units, top_ids, unit_chunks
from .base import Selector


def evs_dissimilarity(features: torch.Tensor, layout: VideoLayout, threshold: float) -> torch.Tensor:
    """(N,) float32 dissimilarity 1 - cos of each token to the reference of its cell (+inf for the first unit).

    Args:
        features: (N, D) every visual token's features in token-id order.
        layout: the video's token layout (T = tokens per unit).
        threshold: a token more similar than this to its cell's reference is a duplicate and leaves the reference
            as it was; 1.0 makes the reference always the previous unit's token.
    """
    out = torch.full((layout.num_tokens,), float("inf"), dtype=torch.float32, device=features.device)
    reference = None  # (T, D') normalised reference token of each cell
    for start, stop in unit_chunks(layout):
        units = normalized_units(features, layout, start, stop)
        for offset, unit in enumerate(units):
            if reference is None:  # the first unit: kept whole, and every cell's first reference
                reference = unit.clone()
                continue
            similarity = (unit * reference).sum(-1).clamp(-1.0, 1.0)
            first = (start + offset) * layout.tokens_per_unit
            out[first: first + layout.tokens_per_unit] = 1.0 - similarity
            changed = similarity <= threshold
            reference[changed] = unit[changed]
    return out


@SELECTORS.register("evs", summary="EVS: the first frame unit, then the tokens least like their cell's last reference")
class EVSSelector(Selector):
    needs_group_pass = False
    needs_features = True
    reads = ("budget", "evs_threshold")

    def select(self, layout: VideoLayout, groups: list[GroupEvidence], *, features: torch.Tensor) -> Selection:
        dissimilarity = evs_dissimilarity(features, layout, self.config.evs_threshold)
        kept = top_ids(dissimilarity, self.config.budget)
        return Selection(kept, [int(torch.isin(g.token_ids, kept).sum()) for g in groups])
