"""`vidcom2`: frame uniqueness sets per-frame budgets, and each frame keeps its least redundant tokens (Liu et al.,
"Video Compression Commander: Plug-and-Play Inference Acceleration for Video Large Language Models", EMNLP 2025,
arXiv 2505.14454).

Rule, on the `vidcom2_channel_fraction` of feature channels whose variance over the whole video is lowest (VidCom2
measures on those), each token L2-normalised over them:
1. similarity of a token x to a centre c is a multi-scale Gaussian kernel, sum over a in {1/8, 1/4, 1/2, 1, 2} of
   exp(-||x - c||^2 / (2a)); the video centre is the mean of all tokens, a frame unit's centre the mean of its own;
2. a frame unit's uniqueness is minus the mean similarity of its tokens to the video centre; with
   p = softmax(uniqueness / `vidcom2_temperature`) over the U units, unit u gets a share budget/U * (1 + p_u - 1/U)
   of the budget (the shares add up to the budget), rounded by largest remainder and capped at the unit's size
   (the excess goes to the other units in the same proportions), so exactly min(budget, tokens) are kept;
3. inside each unit the kept tokens are those with the lowest similarity to the video centre plus the unit's
   centre: the least redundant ones (ties to the lower token id).

Departs from the original: VidCom2 works per frame; here per frame unit (two frames for Qwen2/2.5-VL, whose
vision tower folds two frames into one token). It turns a retention ratio into per-frame counts with rounding and
at least one token per frame; here the budget is a token count split by largest remainder, so a unit may get none
when the budget is below the number of units. The channel variances and the video centre are accumulated over
chunks of units (three passes over the features: variances, centre, scores) instead of one tensor of the whole
video.

Memory: one chunk of units, O(CHUNK_TOKENS x D') floats, plus (N,) token scores and (U,) unit scores.
"""

from __future__ import annotations

import math

import torch

from ..allocation import allocate_by_weights
from ..layout import GroupEvidence, Selection, VideoLayout
from ..registry import SELECTORS
from ..similarity import similarity_view, unit_chunks
from .base import Selector

KERNEL_WIDTHS = (0.125, 0.25, 0.5, 1.0, 2.0)  # VidCom2's Gaussian scales a = 2^-3 .. 2^1


def gaussian_similarity(x: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Multi-scale Gaussian kernel: (..., C) tokens against a broadcastable (..., C) centre -> (...) similarity in
    (0, len(KERNEL_WIDTHS)]."""
    squared = ((x - centre) ** 2).sum(-1)
    return sum(torch.exp(-squared / (2 * a)) for a in KERNEL_WIDTHS)


def low_variance_channels(features: torch.Tensor, layout: VideoLayout, fraction: float) -> torch.Tensor:
    """(C,) ascending indices of the max(1, int(fraction * D')) similarity channels of lowest variance over every
    token (ties to the lower channel), accumulated over chunks in float64."""
    view = similarity_view(features, layout)
    total = torch.zeros(view.shape[1], dtype=torch.float64, device=features.device)
    squares = torch.zeros_like(total)
    for start, stop in unit_chunks(layout):
        rows = view[start * layout.tokens_per_unit: stop * layout.tokens_per_unit].double()
        total += rows.sum(0)
        squares += (rows ** 2).sum(0)
    n = layout.num_tokens
    variance = squares / n - (total / n) ** 2
    count = max(1, int(fraction * view.shape[1]))
    return torch.sort(torch.argsort(variance, stable=True)[:count]).values


def vidcom2_scores(features: torch.Tensor, layout: VideoLayout, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Token redundancy (N,) (similarity to the video centre plus to its unit's centre; lower = keep first) and
    unit uniqueness (U,) (minus the mean similarity of its tokens to the video centre), float32."""
    channels = low_variance_channels(features, layout, fraction).to(features.device)
    view = similarity_view(features, layout)
    tpu = layout.tokens_per_unit

    def unit_rows(start: int, stop: int) -> torch.Tensor:  # (units, T, C) normalised over the chosen channels
        rows = view[start * tpu: stop * tpu].index_select(1, channels).float()
        return torch.nn.functional.normalize(rows, dim=-1).reshape(stop - start, tpu, -1)

    centre = sum(unit_rows(start, stop).sum((0, 1)) for start, stop in unit_chunks(layout)) / layout.num_tokens
    redundancy = torch.empty(layout.num_tokens, dtype=torch.float32, device=features.device)
    uniqueness = torch.empty(layout.num_units, dtype=torch.float32, device=features.device)
    for start, stop in unit_chunks(layout):
        rows = unit_rows(start, stop)
        to_video = gaussian_similarity(rows, centre)
        to_unit = gaussian_similarity(rows, rows.mean(1, keepdim=True))
        redundancy[start * tpu: stop * tpu] = (to_video + to_unit).flatten()
        uniqueness[start:stop] = -to_video.mean(1)
    return redundancy, uniqueness


def unit_shares(uniqueness: torch.Tensor, temperature: float) -> list[float]:
    """Log of each unit's relative share 1 + p_u - 1/U, p = softmax(uniqueness / temperature) (U,): the weights of
    the budget split (every share is > 0: p_u >= 0 and 1/U <= 1, and = 1 when U = 1)."""
    p = torch.softmax((uniqueness.double() - uniqueness.max()) / temperature, dim=0)
    return [math.log(v) for v in (1.0 + p - 1.0 / len(p)).tolist()]


@SELECTORS.register("vidcom2", summary="VidCom2: more tokens to unique frame units, each keeps its least redundant")
class VidCom2Selector(Selector):
    needs_group_pass = False
    needs_features = True
    reads = ("budget", "vidcom2_temperature", "vidcom2_channel_fraction")

    def select(self, layout: VideoLayout, groups: list[GroupEvidence], *, features: torch.Tensor) -> Selection:
        cfg, tpu = self.config, layout.tokens_per_unit
        redundancy, uniqueness = vidcom2_scores(features, layout, cfg.vidcom2_channel_fraction)
        counts = allocate_by_weights(cfg.budget, unit_shares(uniqueness, cfg.vidcom2_temperature),
                                     [tpu] * layout.num_units, priority=uniqueness.tolist())
        # each unit's tokens from least to most redundant (stable: ties to the lower cell)
        order = torch.argsort(redundancy.cpu().reshape(layout.num_units, tpu), dim=1, stable=True)
        take = torch.arange(tpu)[None, :] < torch.tensor(counts)[:, None]
        kept = (order + torch.arange(layout.num_units)[:, None] * tpu)[take]
        kept = torch.sort(kept).values
        return Selection(kept, [int(torch.isin(g.token_ids, kept).sum()) for g in groups])
