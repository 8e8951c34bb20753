"""Entropy of answer distributions, in nats: the group-relevance signal of AdaptToken."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (natural log) of softmax(logits) over the last dimension.

    Args:
        logits: (..., V) unnormalised scores.
    Returns:
        (...,) float32 entropies in nats; 0 for a one-hot distribution, ln V for a uniform one.
    """
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return -(log_p.exp() * log_p).nan_to_num(0.0).sum(-1)


def restricted_entropy(logits: torch.Tensor, token_ids: Sequence[int]) -> torch.Tensor:
    """Entropy over a subset of the vocabulary (e.g. the option letters), renormalised.

    Args:
        logits: (..., V); token_ids: the K vocabulary ids to keep.
    Returns:
        (...,) entropies in nats, at most ln K.
    """
    index = torch.as_tensor(list(token_ids), device=logits.device, dtype=torch.long)
    return entropy(logits.index_select(-1, index))


def least_certain_mean(token_entropies: torch.Tensor, fraction: float) -> float:
    """Mean of the highest `fraction` of per-token entropies (at least one token): the
    "least-certain 10%" aggregate for open-ended, multi-token answers.

    Args:
        token_entropies: (T,) entropies of the generated tokens, T >= 1.
    """
    if token_entropies.numel() == 0:
        raise ValueError("no generated tokens to aggregate")
    k = max(1, int(round(fraction * token_entropies.numel())))
    return float(token_entropies.float().topk(k).values.mean())
