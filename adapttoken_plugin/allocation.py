"""Budget allocation across groups: B_g = B * softmax(-H / tau)_g, as integers, capped per group.

Pure function of numbers; tested with hypothesis in tests/test_allocation.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def allocate_by_weights(
    budget: int, log_weights: Sequence[float], capacities: Sequence[int], priority: Sequence[float] | None = None
) -> list[int]:
    """Split `budget` tokens over groups in proportion to exp(log_weights), capped by `capacities`.

    Groups whose proportional share exceeds their capacity get exactly their capacity and the overflow
    is shared among the others in the same proportions (water-filling); the fractional shares are
    rounded by largest remainder; ties go to the larger `priority` (default: the log weight), then the
    lower group index. A separate priority matters when weights tie in floating point although their
    sources differ (an entropy of 5e-324 against 0.0).

    Returns one integer per group; the total is exactly min(budget, sum(capacities)).
    """
    if len(log_weights) != len(capacities):
        raise ValueError(f"{len(log_weights)} weights for {len(capacities)} groups")
    if budget < 0 or any(c < 0 for c in capacities):
        raise ValueError(f"budget and capacities must be >= 0, got {budget} and {list(capacities)}")
    n = len(capacities)
    if n == 0:
        return []
    priority = log_weights if priority is None else priority
    alloc = [0] * n
    remaining = min(budget, sum(capacities))
    open_groups = [g for g in range(n) if capacities[g] > 0]
    weights = _shifted_weights(log_weights, priority, open_groups)
    while remaining > 0 and open_groups:
        total_w = sum(weights[g] for g in open_groups)
        if total_w == 0:  # the open groups' weights all underflowed (a tiny temperature): shift among them
            weights = _shifted_weights(log_weights, priority, open_groups)
            total_w = sum(weights[g] for g in open_groups)
        shares = {g: remaining * weights[g] / total_w for g in open_groups}
        saturated = [g for g in open_groups if shares[g] >= capacities[g] - alloc[g]]
        if saturated:
            for g in saturated:
                remaining -= capacities[g] - alloc[g]
                alloc[g] = capacities[g]
            open_groups = [g for g in open_groups if g not in saturated]
            continue
        floors = {g: math.floor(shares[g]) for g in open_groups}
        leftover = remaining - sum(floors.values())
        # each open group's share is < its free room, so ceil(share) still fits under the cap
        by_remainder = sorted(open_groups, key=lambda g: (-(shares[g] - floors[g]), -priority[g], g))
        for g in open_groups:
            alloc[g] += floors[g]
        for g in by_remainder[:leftover]:
            alloc[g] += 1
        remaining = 0
    return alloc


def _shifted_weights(log_weights: Sequence[float], priority: Sequence[float], groups: list[int]) -> list[float]:
    """exp(log weight) of `groups` (0 for the others), shifted so that the largest is 1: softmax is shift-invariant
    and exp never overflows. When every one of them has log weight -inf (a tiny temperature), the limit: all
    the weight on those of highest priority."""
    weights = [0.0] * len(log_weights)
    if not groups:
        return weights
    top = max(log_weights[g] for g in groups)
    best = max(priority[g] for g in groups)
    for g in groups:
        weights[g] = float(priority[g] == best) if top == -math.inf else math.exp(log_weights[g] - top)
    return weights


def allocation_upper_bounds(budget: int, log_weights: Sequence[float], capacities: Sequence[int]) -> list[int]:
    """Upper bounds on what `allocate_by_weights` can give each of these groups once MORE groups join.

    The capped allocation is water-filling: B_g = min(cap_g, lam * w_g) with the level lam set so the total is
    the budget. More groups (weights >= 0) can only lower the level, so each group's final share is at most
    min(cap_g, lam_now * w_g); largest-remainder rounding adds at most one token. With every group here
    saturated (sum of capacities <= budget) the level is unbounded and the bound is the capacity.

    Lets the stage drop, while groups are still arriving, candidates a group can never be given (the
    candidate store stays bounded as the video grows) without changing the final selection.
    """
    if len(log_weights) != len(capacities):
        raise ValueError(f"{len(log_weights)} weights for {len(capacities)} groups")
    n = len(capacities)
    if n == 0:
        return []
    if sum(capacities) <= budget:
        return list(capacities)
    top = max(log_weights)
    if top == -math.inf:  # a tiny temperature: every weight underflowed; no finite level to bound them by
        return list(capacities)
    weights = [math.exp(w - top) for w in log_weights]
    remaining, open_groups = float(budget), [g for g in range(n) if capacities[g] > 0]
    while True:  # the level: saturate every group whose share exceeds its capacity, spread the rest
        total_w = sum(weights[g] for g in open_groups)
        if total_w == 0:  # the groups left have weights that underflowed to 0: no finite level bounds them
            return [capacities[g] if g in open_groups else min(capacities[g], budget) for g in range(n)]
        level = remaining / total_w
        saturated = [g for g in open_groups if level * weights[g] >= capacities[g]]
        if not saturated:
            break
        remaining -= sum(capacities[g] for g in saturated)
        open_groups = [g for g in open_groups if g not in saturated]
    return [min(capacities[g], math.ceil(level * weights[g]) + 1) for g in range(n)]


def allocate_budget(budget: int, entropies: Sequence[float], capacities: Sequence[int], tau: float) -> list[int]:
    """AdaptToken's allocation: lower entropy (nats) -> larger share; softmax temperature `tau`.

    The log weights are -(H_g - min H) / tau: the same softmax as -H_g / tau (shift-invariant), but the most
    confident group's is 0 and the others' are <= 0, so a tiny tau gives -inf (no share), never inf - inf.
    """
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    low = min(entropies, default=0.0)
    return allocate_by_weights(budget, [-(h - low) / tau for h in entropies], capacities,
                               priority=[-h for h in entropies])


def allocate_equally(budget: int, capacities: Sequence[int], priority: Sequence[float] | None = None) -> list[int]:
    """Equal split (the attention-topk baseline), with the same caps and rounding; the tokens left after the
    equal floor go to the groups of highest `priority` (attention-topk: the score of each group's next
    candidate), then the lower index."""
    return allocate_by_weights(budget, [0.0] * len(capacities), capacities, priority)
