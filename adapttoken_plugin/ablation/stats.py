"""Intervals for benchmark tables: a table whose strategies all score the same says nothing without them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def bootstrap_interval(values: Sequence[float], level: float = 0.95, resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (per-question 0/1 correctness, say): `resamples`
    resamples of the questions with replacement, a fixed `seed` so a table is reproducible. With every value
    equal the interval is that value: the questions cannot show any spread (say how many there are)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("no values to bootstrap")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def format_interval(values: Sequence[float]) -> str:
    """"0.750 [0.500, 0.917]": the mean and its 95% bootstrap interval."""
    low, high = bootstrap_interval(values)
    return f"{float(np.mean(values)):.3f} [{low:.3f}, {high:.3f}]"


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value for paired right/wrong outcomes on the same questions: `only_first`
    questions only the first method got right, `only_second` only the second. Under "no difference" the
    discordant questions split like a fair coin: p = P(|Binomial(n, 1/2) - n/2| >= |only_first - n/2|)."""
    if only_first < 0 or only_second < 0:
        raise ValueError(f"counts must be >= 0, got {only_first} and {only_second}")
    n = only_first + only_second
    if n == 0:
        return 1.0
    k = min(only_first, only_second)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_bootstrap_interval(first: Sequence[float], second: Sequence[float], level: float = 0.95,
                              resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(first) - mean(second) over the same questions resampled together."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired values must have one shape and not be empty, got {a.shape} and {b.shape}")
    return bootstrap_interval(a - b, level, resamples, seed)
