"""`framefusion`: merge tokens that repeat the same cell of the previous frame unit, then keep the most attended
(Fu et al., "FrameFusion: Combining Similarity and Importance for Video Token Reduction on Large Visual Language
Models", ICCV 2025, arXiv 2501.01986).

Rule:
1. Similarity merging: a token whose cosine similarity to the token at the same spatial cell of the previous frame
   unit is at least `framefusion_threshold` may merge into it. Of those, at most N - min(budget, N) merge, the
   most similar first (ties to the lower token id): merging never leaves fewer tokens than the budget, and at a
   budget of every token nothing merges. A run of merged tokens at one cell goes into the run's earliest token,
   its representative, which reaches the final pass at its own position with the mean of the run's features.
2. Importance pruning: the tokens left (representatives and unmerged tokens) are ranked by the group passes'
   attention score, a merged token by the mean score of its members, and the best min(budget, N) are kept (ties
   to the lower token id); a representative that is not kept takes its members with it. Scores of different
   groups are compared directly, as in one long sequence.

Departs from the original: FrameFusion merges hidden states inside the language model's first layers (repeating
until few tokens are similar) and prunes by the attention of one full pass over the whole video; here merging uses
the vision features (the projector's output, `layout.similarity_dims` columns) before the language model, the
importance is the stage's group-pass attention over interleaved groups (`scoring_layer`, `score_reduce`), and the
count is the budget rather than a compute cost. Frames are frame units (two frames for Qwen2/2.5-VL).

Memory: the same-cell similarities are computed one chunk of units at a time, O(CHUNK_TOKENS x D') floats, plus
(N,) vectors of similarities, scores and representatives, and the (M, D) merged features of the kept merged
tokens (M <= budget), accumulated chunk by chunk.
"""

from __future__ import annotations

import torch

from ..layout import GroupEvidence, Selection, VideoLayout
from ..registry import SELECTORS
from ..similarity import CHUNK_TOKENS, same_cell_previous_similarity, top_ids
from .base import Selector


def merge_runs(similarity: torch.Tensor, layout: VideoLayout, threshold: float, count: int) -> torch.Tensor:
    """(N,) int64 representative of every token after merging at most `count` tokens into the same cell of the
    previous unit: the most similar tokens with similarity >= threshold merge first (ties to the lower id), and a
    chain of merges at one cell resolves to its earliest token. A token that is not merged is its own.

    Args:
        similarity: (N,) cosine similarity of each token to the same cell of the previous unit (-inf in unit 0).
        layout: the video's token layout.
        threshold: the least similarity that may merge.
        count: the most tokens that merge (>= 0).
    """
    n, tpu = layout.num_tokens, layout.tokens_per_unit
    similarity = similarity.cpu()
    eligible = (similarity >= threshold).nonzero().flatten()
    order = torch.argsort(similarity[eligible], descending=True, stable=True)[: max(0, count)]
    merges = torch.zeros(n, dtype=torch.bool)
    merges[eligible[order]] = True
    representative = torch.arange(n)
    for unit in range(1, layout.num_units):  # in time order, so the previous unit's tokens are already resolved
        cells = slice(unit * tpu, (unit + 1) * tpu)
        previous = representative[(unit - 1) * tpu: unit * tpu]
        representative[cells] = torch.where(merges[cells], previous, representative[cells])
    return representative


def group_scores(groups: list[GroupEvidence], num_tokens: int) -> torch.Tensor:
    """(N,) float32 attention score of every token from the visited groups' passes (-inf where none ran)."""
    scores = torch.full((num_tokens,), float("-inf"))
    for group in groups:
        if group.scores is not None:
            scores[group.token_ids] = group.scores.float().cpu()
    return scores


def merged_means(features: torch.Tensor, representative: torch.Tensor, merged_ids: torch.Tensor) -> torch.Tensor:
    """(M, D) float32 mean of the feature rows of every token whose representative is merged_ids[i] (ascending),
    summed one chunk of rows at a time."""
    sums = torch.zeros(len(merged_ids), features.shape[1], dtype=torch.float32, device=features.device)
    counts = torch.zeros(len(merged_ids), dtype=torch.float32, device=features.device)
    for start in range(0, len(representative), CHUNK_TOKENS):
        reps = representative[start: start + CHUNK_TOKENS]
        slot = torch.searchsorted(merged_ids, reps).clamp(max=max(len(merged_ids) - 1, 0))
        member = merged_ids[slot] == reps if len(merged_ids) else torch.zeros_like(reps, dtype=torch.bool)
        rows = torch.arange(start, start + len(reps))[member]
        sums.index_add_(0, slot[member].to(features.device), features[rows.to(features.device)].float())
        counts.index_add_(0, slot[member].to(features.device), torch.ones(len(rows), device=features.device))
    return sums / counts.clamp_min(1.0)[:, None]


@SELECTORS.register("framefusion",
                    summary="FrameFusion: merge tokens like the previous unit's same cell, keep the most attended")
class FrameFusionSelector(Selector):
    needs_features = True
    merges = True
    reads = ("budget", "framefusion_threshold")

    def select(self, layout: VideoLayout, groups: list[GroupEvidence], *, features: torch.Tensor) -> Selection:
        n = layout.num_tokens
        budget = min(self.config.budget, n)
        similarity = same_cell_previous_similarity(features, layout)
        representative = merge_runs(similarity, layout, self.config.framefusion_threshold, n - budget)
        members = torch.bincount(representative, minlength=n)
        # a merged token's importance: the mean score of its members (each member's own group-pass score)
        scores = torch.zeros(n).index_add_(0, representative, group_scores(groups, n)) / members.clamp_min(1)
        left = (members > 0).nonzero().flatten()  # representatives and unmerged tokens, ascending
        kept = left[top_ids(scores[left], budget)]
        merged_ids = kept[members[kept] > 1]
        merged = merged_means(features, representative, merged_ids).to(features.dtype)
        return Selection(kept, [int(torch.isin(g.token_ids, kept).sum()) for g in groups],
                         merged_ids=merged_ids, merged_features=merged)
