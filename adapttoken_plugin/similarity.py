"""Feature maths the feature-based selectors share, bounded in memory.

A video holds N = 10^5..10^6 visual tokens: nothing here builds an N x N matrix. Similarities are computed per
frame unit, per pair of adjacent units or over chunks of consecutive units of at most `CHUNK_TOKENS` tokens
(at least one unit), each chunk converted to float32 on the features' own device (the feature store).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .layout import VideoLayout

CHUNK_TOKENS = 8192
"""Tokens per chunk: 8192 x 3584 float32 values (a 7B model's width) are 117 MiB."""


def similarity_view(features: torch.Tensor, layout: VideoLayout) -> torch.Tensor:
    """The columns of `features` (N, D) that similarity compares, (N, D') with D' = `layout.similarity_dims` or D:
    Qwen3-VL's rows carry its DeepStack levels after the token's own features. A view, never a copy."""
    return features[:, : layout.similarity_dims]


def unit_chunks(layout: VideoLayout, max_tokens: int | None = None) -> Iterator[tuple[int, int]]:
    """Consecutive frame-unit ranges [start, stop) covering the video, each of at most max(max_tokens, tokens per
    unit) tokens (default `CHUNK_TOKENS`): the loop that keeps feature maths at O(chunk x D) memory."""
    per_chunk = max(1, (CHUNK_TOKENS if max_tokens is None else max_tokens) // layout.tokens_per_unit)
    for start in range(0, layout.num_units, per_chunk):
        yield start, min(layout.num_units, start + per_chunk)


def normalized_units(features: torch.Tensor, layout: VideoLayout, start: int, stop: int) -> torch.Tensor:
    """((stop - start), T, D') float32 L2-normalised similarity columns of the units [start, stop) (a zero row
    stays zero, so its cosine with anything is 0)."""
    rows = similarity_view(features, layout)[start * layout.tokens_per_unit: stop * layout.tokens_per_unit]
    rows = torch.nn.functional.normalize(rows.float(), dim=-1)
    return rows.reshape(stop - start, layout.tokens_per_unit, -1)


def same_cell_previous_similarity(features: torch.Tensor, layout: VideoLayout) -> torch.Tensor:
    """(N,) float32 cosine similarity of each token with the token at the same spatial cell of the previous frame
    unit, in [-1, 1]; -inf for the first unit, which has no previous unit. Memory: one chunk of units plus the
    unit before it, O(CHUNK_TOKENS x D'), and the (N,) result."""
    out = torch.full((layout.num_tokens,), float("-inf"), dtype=torch.float32, device=features.device)
    previous = None  # (1, T, D') the unit just before the current chunk
    for start, stop in unit_chunks(layout):
        units = normalized_units(features, layout, start, stop)
        span = units if previous is None else torch.cat([previous, units])  # units first .. stop - 1
        first = start if previous is None else start - 1
        sims = (span[1:] * span[:-1]).sum(-1).clamp(-1.0, 1.0)  # units first + 1 .. stop - 1 against the one before
        out[(first + 1) * layout.tokens_per_unit: stop * layout.tokens_per_unit] = sims.flatten()
        previous = units[-1:]
    return out


def top_ids(scores: torch.Tensor, count: int) -> torch.Tensor:
    """(min(count, N),) int64 indices of the `count` highest of `scores` (N,), ascending; ties go to the lower index,
    so a selection that ranks by a score is deterministic."""
    order = torch.argsort(scores, descending=True, stable=True)[:count]
    return torch.sort(order.cpu()).values
