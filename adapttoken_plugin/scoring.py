"""Cross-modal attention scores without eager attention and without `output_attentions`.

During a group prefill a forward pre-hook on the scoring layer's attention module receives the
layer's inputs (hidden states after the input norm, rotary cos/sin) and recomputes softmax
attention for the few text-query rows after the video only: memory H * n_query * L on one layer,
never L x L. The model keeps its own attention implementation (sdpa, flash, ...).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .adapters.base import ModelAdapter
from .distributed import check_sharded_heads, reduce_scores_across_ranks


@dataclass
class ScoreCapture:
    """Filled by `capture_scores`: per-visual-token scores of the last prefill that matched."""

    scores: torch.Tensor | None = None
    seconds: float = 0.0


def reduce_scores(probs: torch.Tensor, columns: slice | torch.Tensor, how: str) -> torch.Tensor:
    """(B, H, n_query, L) attention -> (N,) scores of the key columns `columns` (a slice or (N,) sequence
    positions; batch 1), reduced over heads and queries by `max` or `mean`."""
    if isinstance(columns, torch.Tensor):
        columns = columns.to(probs.device)
    part = probs[0, :, :, columns]
    flat = part.reshape(-1, part.shape[-1])
    return flat.amax(0) if how == "max" else flat.mean(0)


@contextmanager
def capture_scores(
    adapter: ModelAdapter, layer: int, n_query: int, columns: slice | torch.Tensor, reduce: str, seq_len: int
) -> Iterator[ScoreCapture]:
    """Record scores at decoder layer `layer` for forward calls whose sequence length is `seq_len`
    (the prefill; decoding steps of a later generate are ignored). The hook is removed on exit. On a
    tensor-parallel model (`distributed.attach`) the scores cover every rank's heads."""
    capture = ScoreCapture()
    attn = adapter.attention_module(layer)

    def hook(module, args, kwargs):
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        if hidden.shape[1] != seq_len:
            return None
        start = time.perf_counter()
        with torch.no_grad():
            probs = adapter.attention_rows(module, hidden, kwargs["position_embeddings"], n_query)
            total_heads = module.config.num_attention_heads
            tp = check_sharded_heads(adapter.model, probs.shape[1], total_heads)
            if tp is None:
                capture.scores = reduce_scores(probs, columns, reduce).cpu()
            else:  # this rank holds some heads only: combine with the other ranks' (identical result on each)
                capture.scores = reduce_scores_across_ranks(probs, columns, reduce, tp, total_heads).cpu()
        capture.seconds += time.perf_counter() - start
        return None

    handle = attn.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield capture
    finally:
        handle.remove()
