"""Cross-modal attention scores without eager attention and without `output_attentions`: the maths of
the scoring layer (`attention_row_chunks`, `partial_scores`), its reduction across tensor-parallel ranks
(`reduce_scores_across_ranks`) and the hook that captures them during a group prefill (`capture_scores`).

During a group prefill a forward pre-hook on the scoring layer's attention module receives the
layer's inputs (hidden states after the input norm, rotary cos/sin) and recomputes softmax
attention for the text-query rows after the video only, a chunk of rows at a time, reducing each
chunk before the next: memory H * rows * L for one chunk (at most `SCORE_CHUNK_BYTES` of logits),
whatever the question's length, never L x L. The model keeps its own attention implementation
(sdpa, flash, ...).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from .adapters.base import ModelAdapter
from .distributed import TensorParallel, tensor_parallel_of
from .errors import UnsupportedModelError
from .timing import StageClock

#: bytes of float32 attention logits the scoring hook holds at once (one chunk of query rows, all heads, every key
#: column): its memory is bounded by this, not by the question's length
SCORE_CHUNK_BYTES = 64 * 2**20


@dataclass
class ScoreCapture:
    """Filled by `capture_scores`: per-visual-token scores (N,) of the last prefill that matched, on the device
    the scoring layer computes on (moving them to the host inside the forward would wait there for every queued
    kernel), and the seconds the hook took."""

    scores: torch.Tensor | None = None
    seconds: float = 0.0


def query_chunk_rows(heads: int, length: int, chunk_bytes: int = SCORE_CHUNK_BYTES) -> int:
    """Query rows per chunk so that one chunk's float32 logits (heads, rows, length) fit `chunk_bytes` (>= 1 row)."""
    return max(1, chunk_bytes // (4 * heads * length))


def attention_row_chunks(
    attn: torch.nn.Module, hidden_states: torch.Tensor, position_embeddings: Any, n_query: int,
    chunk_rows: int | None = None,
) -> Iterator[torch.Tensor]:
    """Softmax attention of the last `n_query` rows, recomputed with the layer's own projections, q/k norms
    (Qwen3) and rotary function from the layer's inputs, `chunk_rows` rows at a time: (B, H, rows, L) chunks in
    row order (None: as many rows as `SCORE_CHUNK_BYTES` of logits hold). Each row's softmax is over its whole
    key row, so the chunks are exactly the rows of the whole (B, H, n_query, L) attention.

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
    k = attn.k_proj(hidden_states).view(batch, length, -1, d)
    if getattr(attn, "k_norm", None) is not None:
        k = attn.k_norm(k)
    k = k.transpose(1, 2)
    k = rope(k, k, cos, sin)[0].float()  # (B, H_kv, L, d)
    kv_heads, heads = k.shape[1], query_heads(attn, hidden_states)
    rows = query_chunk_rows(heads, length) if chunk_rows is None else chunk_rows
    keys = torch.arange(length, device=k.device)
    for start in range(length - n_query, length, rows):
        stop = min(length, start + rows)
        q = attn.q_proj(hidden_states[:, start:stop]).view(batch, stop - start, heads, d)
        if getattr(attn, "q_norm", None) is not None:
            q = attn.q_norm(q)
        q = q.transpose(1, 2)
        q = rope(q, q, cos[:, start:stop], sin[:, start:stop])[0].float()
        # grouped-query heads without copying the keys: query head h reads key head h // (heads // kv_heads)
        grouped = q.reshape(batch, kv_heads, (heads // kv_heads) * (stop - start), d)
        # scaled and masked in place: one chunk of logits and its softmax are alive, not four chunk-sized copies
        logits = (grouped @ k.transpose(-1, -2)).view(batch, heads, stop - start, length).mul_(attn.scaling)
        future = keys[None, :] > torch.arange(start, stop, device=k.device)[:, None]
        yield torch.softmax(logits.masked_fill_(future, float("-inf")), dim=-1)


def query_heads(attn: torch.nn.Module, hidden_states: torch.Tensor) -> int:
    """Query heads the attention module computes (under tensor parallelism, this rank's share): from the width
    of one projected row, which holds for a plain Linear and a sharded one alike."""
    return attn.q_proj(hidden_states[:, -1:]).shape[-1] // attn.head_dim


def partial_scores(chunks: Iterator[torch.Tensor], columns: slice | torch.Tensor, how: str) -> tuple[torch.Tensor, int]:
    """Reduce (B, H, rows, L) attention chunks over heads and rows at the key columns `columns` (batch 1):
    the (N,) maximum for `max`, the (N,) sum for `mean` (divide by the rows counted), and the rows counted
    (heads x query rows). Exact in chunks: a max of maxima, a sum of sums."""
    total: torch.Tensor | None = None
    counted = 0
    for probs in chunks:
        if isinstance(columns, torch.Tensor):
            columns = columns.to(probs.device)
        # reduced over every key column, then the visual ones taken: each column's reduction is the same, and no
        # (heads x rows, N) copy of the chunk is made (a third of its size at long questions)
        flat = probs[0].reshape(-1, probs.shape[-1])
        reduced = (flat.amax(0) if how == "max" else flat.sum(0))[columns]
        total = reduced if total is None else torch.maximum(total, reduced) if how == "max" else total + reduced
        counted += flat.shape[0]
    if total is None:
        raise ValueError("no query rows to score (n_query must be >= 1)")
    return total, counted


def reduce_scores_across_ranks(
    partial: torch.Tensor, how: str, tp: TensorParallel, local_heads: int, total_heads: int, n_query: int
) -> torch.Tensor:
    """Scores (N,) over *all* heads from this rank's `partial_scores` over its `local_heads` heads: the max
    over heads and queries is the max of the per-rank maxima (exact); the mean is the sum of the per-rank sums
    over total_heads * n_query. The result is identical on every rank.
    """
    import torch.distributed as dist

    if local_heads * tp.world_size != total_heads:
        raise UnsupportedModelError(
            f"the scoring layer holds {local_heads} of {total_heads} attention heads on each of {tp.world_size} "
            "ranks; tensor parallelism must split the heads evenly"
        )
    scores = partial.contiguous()
    dist.all_reduce(scores, op=dist.ReduceOp.MAX if how == "max" else dist.ReduceOp.SUM, group=tp.group)
    return scores if how == "max" else scores / (total_heads * n_query)


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
    chunk_rows: int | None = None, stop: bool = False, clock: StageClock | None = None,
) -> Iterator[ScoreCapture]:
    """Record scores at decoder layer `layer` for forward calls whose sequence length is `seq_len`
    (the prefill; decoding steps of a later generate are ignored). The hook is removed on exit. On a
    tensor-parallel model (`distributed.attach`) the scores cover every rank's heads. `stop`: end the forward
    right after (raises `ScoresCaptured` out of the model call; the layers after `layer` do not run).

    The attention rows are computed and reduced `chunk_rows` query rows at a time (None: as many as
    `SCORE_CHUNK_BYTES` of logits hold), so a long question costs time, not memory. The scores stay on the
    layer's device: the caller moves them once the forward has ended. `clock` times the hook (`ScoreCapture.seconds`;
    None: an unsynchronised `StageClock`)."""
    capture = ScoreCapture()
    clock = clock or StageClock()
    attn = adapter.attention_module(layer)

    def hook(module, args, kwargs):
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        if hidden.shape[1] != seq_len:
            return None
        start = clock.now()
        with torch.no_grad():
            local_heads = query_heads(module, hidden)
            total_heads = module.config.num_attention_heads
            tp = check_sharded_heads(adapter.model, local_heads, total_heads)
            chunks = attention_row_chunks(module, hidden, kwargs["position_embeddings"], n_query, chunk_rows)
            partial, counted = partial_scores(chunks, columns, reduce)
            if tp is None:
                capture.scores = partial if reduce == "max" else partial / counted
            else:  # this rank holds some heads only: combine with the other ranks' (identical result on each)
                capture.scores = reduce_scores_across_ranks(partial, reduce, tp, local_heads, total_heads, n_query)
        capture.seconds += clock.now() - start
        if stop:
            raise ScoresCaptured
        return None

    handle = attn.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield capture
    finally:
        handle.remove()
