"""`fastvid`: temporal segmentation by frame similarity, then density-peak pruning inside segments (Shen et al.,
"FastVID: Dynamic Density Pruning for Fast Video Large Language Models", NeurIPS 2025, arXiv 2503.11187).

Rule:
1. Dynamic temporal segmentation (DySeg): each frame unit's global feature is the mean of its tokens; a segment
   ends after unit t when cos(global_t, global_t+1) < `fastvid_segment_threshold`, and also at the
   `fastvid_min_segments` - 1 least similar transitions (ties to the earlier one), so a video of at least that many
   units has at least that many segments.
2. Each segment gets a share of the budget proportional to its token count (largest remainder: exactly
   min(budget, tokens) in all). Inside a segment the units are taken `fastvid_anchor_step` at a time from the
   segment's first unit (FastVID's anchor frames come every p units of a segment), and each such window gets a
   share of the segment's budget proportional to its size.
3. Density peaks (DPC-kNN) inside each window: with d the Euclidean distance between L2-normalised features,
   a token's density is rho = exp(-mean d^2 to its `fastvid_knn` nearest neighbours in the window), its separation
   delta = the distance to the nearest token of higher density (the densest token: its largest distance), and
   the window keeps its tokens of highest rho x delta: the centres of the dense clusters, one per cluster first.
   Equal densities are ordered by token id (the earlier counts as denser), and equal scores go to the lower id.

Departs from the original: FastVID picks density peaks on anchor frames only and merges every token of the
segment into its most similar anchor token (density-based token merging), and keeps a second share of tokens by
the vision tower's [CLS] attention (attention-based token selection, d = 0.4 of the budget). Neither is here: the
[CLS] attention needs a hook in each family's vision tower, and this selector prunes without merging, so the
density peaks are taken over every token of an anchor window rather than the anchor frame alone. Distances are
those of L2-normalised features (the other feature selectors' cosine geometry) rather than raw features scaled by
sqrt(D), which keeps exp(-d^2) in a usable range whatever the projector's scale. Frames are frame units (two
frames for Qwen2/2.5-VL). Defaults: tau = 0.9 and c = 8 as in the paper's LLaVA-OneVision runs (its Qwen2.5-VL
script uses tau = 0.84), p = 4 as in the paper's scripts, k = 4 as in the public density-score code we read.

Memory: segmentation streams the units, O(CHUNK_TOKENS x D') floats; density is computed per window of at most
p x T tokens, O((p x T)^2) floats for the pairwise distances (1024^2 for p = 4 and 256 tokens per unit), never
over a whole segment.
"""

from __future__ import annotations

import math

import torch

from ..allocation import allocate_by_weights
from ..layout import GroupEvidence, Selection, VideoLayout
from ..registry import SELECTORS
from ..similarity import similarity_view, top_ids, unit_chunks
from .base import Selector


def unit_transitions(features: torch.Tensor, layout: VideoLayout) -> torch.Tensor:
    """(U - 1,) float32 cosine similarity of each frame unit's mean feature with the next unit's, streamed over
    chunks of units (the last unit's mean carried from one chunk to the next)."""
    view = similarity_view(features, layout)
    tpu = layout.tokens_per_unit
    out, previous = [], None
    for start, stop in unit_chunks(layout):
        rows = view[start * tpu: stop * tpu].float().reshape(stop - start, tpu, -1)
        means = torch.nn.functional.normalize(rows.mean(1), dim=-1)
        span = means if previous is None else torch.cat([previous, means])
        out.append((span[1:] * span[:-1]).sum(-1).clamp(-1.0, 1.0))
        previous = means[-1:]
    return torch.cat(out)


def temporal_segments(transitions: torch.Tensor, threshold: float, min_segments: int) -> list[tuple[int, int]]:
    """DySeg: unit ranges [start, stop) of the segments, given the (U - 1,) similarities of adjacent units: a cut
    after unit t where transitions[t] < threshold, and at the min_segments - 1 lowest transitions (ties to the
    earlier transition)."""
    num_units = len(transitions) + 1
    cuts = set((transitions < threshold).nonzero().flatten().tolist())
    lowest = torch.argsort(transitions.cpu(), stable=True)[: max(0, min_segments - 1)]
    cuts.update(lowest.tolist())
    bounds = [0, *sorted(t + 1 for t in cuts), num_units]
    return list(zip(bounds[:-1], bounds[1:]))


def density_peak_scores(x: torch.Tensor, k: int) -> torch.Tensor:
    """DPC-kNN scores rho x delta (M,) of the M rows of `x` (M, D'), float32, over L2-normalised rows.

    rho = exp(-mean squared distance to the k nearest other rows); delta = distance to the nearest row of higher
    density, where equal densities count the lower row as denser; the densest row's delta is its largest
    distance. Memory: the (M, M) distance matrix.
    """
    m = x.shape[0]
    if m == 1:
        return torch.ones(1)
    rows = torch.nn.functional.normalize(x.float(), dim=-1)
    distance = torch.cdist(rows, rows)
    k = min(k, m - 1)
    others = distance.clone()
    others.fill_diagonal_(float("inf"))  # a row is not its own neighbour
    nearest = torch.topk(others, k, dim=1, largest=False).values
    rho = torch.exp(-(nearest ** 2).mean(1))
    index = torch.arange(m, device=x.device)
    denser = (rho[None, :] > rho[:, None]) | ((rho[None, :] == rho[:, None]) & (index[None, :] < index[:, None]))
    delta = torch.where(denser, distance, torch.full_like(distance, float("inf"))).min(1).values
    densest = torch.isinf(delta)
    delta[densest] = distance[densest].max(1).values
    return rho * delta


def _shares(budget: int, sizes: list[int]) -> list[int]:
    """`budget` split in proportion to `sizes`, largest remainder, capped at each size."""
    return allocate_by_weights(budget, [math.log(s) for s in sizes], sizes)


@SELECTORS.register("fastvid", summary="FastVID: segments by frame similarity, density peaks (DPC-kNN) inside them")
class FastVIDSelector(Selector):
    needs_group_pass = False
    needs_features = True
    reads = ("budget", "fastvid_segment_threshold", "fastvid_min_segments", "fastvid_anchor_step", "fastvid_knn")

    def select(self, layout: VideoLayout, groups: list[GroupEvidence], *, features: torch.Tensor) -> Selection:
        cfg, tpu = self.config, layout.tokens_per_unit
        segments = temporal_segments(unit_transitions(features, layout), cfg.fastvid_segment_threshold,
                                     cfg.fastvid_min_segments)
        view = similarity_view(features, layout)
        kept = []
        for (start, stop), budget in zip(segments, _shares(cfg.budget, [(b - a) * tpu for a, b in segments])):
            windows = [(u, min(stop, u + cfg.fastvid_anchor_step)) for u in range(start, stop, cfg.fastvid_anchor_step)]
            for (lo, hi), count in zip(windows, _shares(budget, [(b - a) * tpu for a, b in windows])):
                if count == 0:
                    continue
                scores = density_peak_scores(view[lo * tpu: hi * tpu], cfg.fastvid_knn)
                kept.append(top_ids(scores, count) + lo * tpu)
        kept_ids = torch.sort(torch.cat(kept)).values if kept else torch.empty(0, dtype=torch.long)
        return Selection(kept_ids, [int(torch.isin(g.token_ids, kept_ids).sum()) for g in groups])
