"""The bootstrap interval the benchmark tables print."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapttoken_plugin.ablation.stats import bootstrap_interval, format_interval


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=60))
def test_the_interval_holds_the_mean_and_stays_in_range(values):
    low, high = bootstrap_interval(values)
    assert 0.0 <= low <= np.mean(values) <= high <= 1.0


def test_more_questions_narrow_the_interval_and_constant_values_have_none():
    few = bootstrap_interval([1.0, 0.0] * 10)
    many = bootstrap_interval([1.0, 0.0] * 200)
    assert (few[1] - few[0]) > 2 * (many[1] - many[0]) > 0
    assert bootstrap_interval([1.0] * 30) == (1.0, 1.0)
    # 20 questions at 0.5: the normal approximation gives about +-0.22; the bootstrap agrees within 0.05
    assert abs((few[1] - few[0]) / 2 - 1.96 * np.sqrt(0.25 / 20)) < 0.05
    assert format_interval([1.0, 0.0, 1.0, 1.0]).startswith("0.750 [")


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="no values"):
        bootstrap_interval([])
    with pytest.raises(ValueError, match="level"):
        bootstrap_interval([1.0], level=1.0)


def test_mcnemar_against_hand_computed_binomial_tails():
    from adapttoken_plugin.ablation.stats import mcnemar_exact

    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(10, 0) == 2 / 2**10  # all ten discordant questions one way
    assert abs(mcnemar_exact(8, 2) - 2 * (1 + 10 + 45) / 1024) < 1e-12  # P(X <= 2), X ~ Bin(10, 1/2), twice
    assert mcnemar_exact(2, 8) == mcnemar_exact(8, 2)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_paired_bootstrap_sees_a_difference_the_unpaired_intervals_hide():
    from adapttoken_plugin.ablation.stats import paired_bootstrap_interval

    rng = np.random.default_rng(0)
    hard = rng.random(60) < 0.5  # questions both methods mostly share
    first = hard.astype(float)
    second = first.copy()
    second[:6] = 0.0  # the second method loses six questions the first gets (where the first was right)
    second[:6][first[:6] == 0] = 0.0
    low, high = paired_bootstrap_interval(first, second)
    assert low >= 0.0 and high > 0.0
    assert paired_bootstrap_interval(first, first) == (0.0, 0.0)
