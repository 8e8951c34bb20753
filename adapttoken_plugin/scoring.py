"""Cross-modal attention scores without eager attention and without `output_attentions`: the maths of
the scoring layer (`attention_rows`, `reduce_scores`), its reduction across tensor-parallel ranks
(`reduce_scores_across_ranks`) and the hook that captures them during a group prefill (`capture_scores`).

During a group prefill a forward pre-hook on the scoring layer's attention module receives the
layer's inputs (hidden states after the input norm, rotary cos/sin) and recomputes softmax
attention for the few text-query rows after the video only: memory H * n_query * L on one layer,
never L x L. The model keeps its own attention implementation (sdpa, flash, ...).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from .adapters.base import ModelAdapter
from .distributed import TensorParallel, tensor_parallel_of
from .errors import UnsupportedModelError


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


def attention_rows(
    attn: torch.nn.Module, hidden_states: torch.Tensor, position_embeddings: Any, n_query: int
) -> torch.Tensor:
    """Softmax attention (B, H, n_query, L) of the last `n_query` rows, recomputed with the layer's
    own projections, q/k norms (Qwen3) and rotary function from the layer's inputs.

    Fits the decoder attention of every supported family (transformers' Llama/Qwen2 layout:
    `q_proj`, `k_proj`, optional `q_norm` / `k_norm` on the head dimension, the module's own
    `apply_rotary_pos_emb`, causal, grouped-query heads).
    """
    batch, length, _ = hidden_states.shape
    window = getattr(attn, "sliding_window", None)
    if window is not None and length > window:
        raise UnsupportedModelError(
            f"scoring layer {attn.layer_idx} uses sliding-window attention (window {window}) and the "
            f"sequence has {length} tokens: pick a full-attention scoring_layer"
        )
    d = attn.head_dim
    rope = sys.modules[type(attn).__module__].apply_rotary_pos_emb  # the layer's own rotary function
    cos, sin = position_embeddings
    q = attn.q_proj(hidden_states[:, -n_query:]).view(batch, n_query, -1, d)
    k = attn.k_proj(hidden_states).view(batch, length, -1, d)
    if getattr(attn, "q_norm", None) is not None:
        q, k = attn.q_norm(q), attn.k_norm(k)
    q, k = q.transpose(1, 2), k.transpose(1, 2)
    q = rope(q, q, cos[:, -n_query:], sin[:, -n_query:])[0]
    k = rope(k, k, cos, sin)[0]
    k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)  # grouped-query heads
    logits = (q.float() @ k.float().transpose(-1, -2)) * attn.scaling
    query_pos = torch.arange(length - n_query, length, device=logits.device)[:, None]
    future = torch.arange(length, device=logits.device)[None, :] > query_pos
    return torch.softmax(logits.masked_fill(future, float("-inf")), dim=-1)


def reduce_scores_across_ranks(
    probs: torch.Tensor, columns: slice | torch.Tensor, how: str, tp: TensorParallel, total_heads: int
) -> torch.Tensor:
    """Scores (N,) of the key columns `columns` over *all* heads, from this rank's (B, H_local, n_query, L)
    attention rows: the max over heads and queries is the max of the per-rank maxima (exact); the mean
    is the sum of the per-rank sums over total_heads * n_query. The result is identical on every rank.
    """
    import torch.distributed as dist

    local_heads = probs.shape[1]
    if local_heads * tp.world_size != total_heads:
        raise UnsupportedModelError(
            f"the scoring layer holds {local_heads} of {total_heads} attention heads on each of {tp.world_size} "
            "ranks; tensor parallelism must split the heads evenly"
        )
    if isinstance(columns, torch.Tensor):
        columns = columns.to(probs.device)
    part = probs[0, :, :, columns]
    flat = part.reshape(-1, part.shape[-1])
    if how == "max":
        scores = flat.amax(0).contiguous()
        dist.all_reduce(scores, op=dist.ReduceOp.MAX, group=tp.group)
        return scores
    scores = flat.sum(0).contiguous()
    dist.all_reduce(scores, op=dist.ReduceOp.SUM, group=tp.group)
    return scores / (total_heads * part.shape[1])


def check_sharded_heads(model: Any, local_heads: int, total_heads: int) -> TensorParallel | None:
    """The group to reduce the scoring layer's scores over: None when the layer holds every head (one
    process, or a layer the model's tensor-parallel plan leaves whole: its scores are complete already);
    raises when the layer is split but no group was attached (the scores would cover a few heads only)."""
    if local_heads == total_heads:
        return None
    tp = tensor_parallel_of(model)
    if tp is None:
        raise UnsupportedModelError(
            f"the scoring layer computes {local_heads} of {total_heads} attention heads (the model is sharded) but "
            "no tensor-parallel group is attached: shard it with adapttoken_plugin.integrations.deepspeed."
            "shard_language_model, or call adapttoken_plugin.distributed.attach(model, group)"
        )
    return tp


class ScoresCaptured(Exception):  # noqa: N818 (a signal, not an error)
    """Raised by a `capture_scores(..., stop=True)` hook once the scores are recorded: the forward ends there,
    the layers after the scoring layer never run (the early-layer pass). The caller catches it."""


@contextmanager
def capture_scores(
    adapter: ModelAdapter, layer: int, n_query: int, columns: slice | torch.Tensor, reduce: str, seq_len: int,
    stop: bool = False,
) -> Iterator[ScoreCapture]:
    """Record scores at decoder layer `layer` for forward calls whose sequence length is `seq_len`
    (the prefill; decoding steps of a later generate are ignored). The hook is removed on exit. On a
    tensor-parallel model (`distributed.attach`) the scores cover every rank's heads. `stop`: end the forward
    right after (raises `ScoresCaptured` out of the model call; the layers after `layer` do not run)."""
    capture = ScoreCapture()
    attn = adapter.attention_module(layer)

    def hook(module, args, kwargs):
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        if hidden.shape[1] != seq_len:
            return None
        start = time.perf_counter()
        with torch.no_grad():
            probs = attention_rows(module, hidden, kwargs["position_embeddings"], n_query)
            total_heads = module.config.num_attention_heads
            tp = check_sharded_heads(adapter.model, probs.shape[1], total_heads)
            if tp is None:
                capture.scores = reduce_scores(probs, columns, reduce).cpu()
            else:  # this rank holds some heads only: combine with the other ranks' (identical result on each)
                capture.scores = reduce_scores_across_ranks(probs, columns, reduce, tp, total_heads).cpu()
        capture.seconds += time.perf_counter() - start
        if stop:
            raise ScoresCaptured
        return None

    handle = attn.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield capture
    finally:
        handle.remove()
