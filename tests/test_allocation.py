import math

from hypothesis import given, settings
from hypothesis import strategies as st

from adapttoken_plugin.allocation import allocate_budget, allocate_equally, allocation_upper_bounds

entropies = st.floats(min_value=0.0, max_value=12.0, allow_nan=False)


@st.composite
def problems(draw):
    n = draw(st.integers(1, 12))
    caps = draw(st.lists(st.integers(0, 500), min_size=n, max_size=n))
    hs = draw(st.lists(entropies, min_size=n, max_size=n))
    budget = draw(st.integers(1, 3000))
    tau = draw(st.floats(min_value=0.05, max_value=50.0))
    return budget, hs, caps, tau


@given(problems())
@settings(max_examples=300, deadline=None)
def test_total_is_exact_and_caps_hold(problem):
    budget, hs, caps, tau = problem
    alloc = allocate_budget(budget, hs, caps, tau)
    assert sum(alloc) == min(budget, sum(caps))
    assert all(0 <= a <= c for a, c in zip(alloc, caps))


@given(problems())
@settings(max_examples=300, deadline=None)
def test_lower_entropy_never_gets_less_when_caps_are_equal(problem):
    budget, hs, caps, tau = problem
    cap = max(caps) or 1
    alloc = allocate_budget(budget, hs, [cap] * len(hs), tau)
    for i in range(len(hs)):
        for j in range(len(hs)):
            if hs[i] < hs[j]:
                assert alloc[i] >= alloc[j], (hs, alloc)


@given(st.lists(entropies, min_size=2, max_size=10), st.integers(10, 2000))
@settings(max_examples=200, deadline=None)
def test_large_tau_gives_an_equal_split(hs, budget):
    alloc = allocate_budget(budget, hs, [10**6] * len(hs), tau=1e9)
    assert max(alloc) - min(alloc) <= 1
    equal = allocate_equally(budget, [10**6] * len(hs))
    assert max(equal) - min(equal) <= 1 and sum(equal) == budget


def test_matches_the_softmax_formula():
    hs, budget, tau = [0.1, 1.2, 1.4], 1000, 2.0
    weights = [math.exp(-h / tau) for h in hs]
    expected = [budget * w / sum(weights) for w in weights]
    alloc = allocate_budget(budget, hs, [10**6] * 3, tau)
    assert all(abs(a - e) < 1 for a, e in zip(alloc, expected))
    assert alloc[0] > alloc[1] > alloc[2]


def test_overflow_of_a_capped_group_goes_to_the_others():
    alloc = allocate_budget(100, [0.0, 5.0, 5.0], [10, 1000, 1000], tau=0.1)
    assert alloc == [10, 45, 45]


def test_ties_in_floating_point_go_to_the_lower_entropy():
    # -5e-324 / tau underflows to -0.0: the weights tie, the entropies do not
    assert allocate_budget(1, [5e-324, 0.0, 0.0], [5, 5, 5], tau=2.0) == [0, 1, 0]


@settings(max_examples=200, deadline=None)
@given(
    budget=st.integers(1, 400),
    groups=st.lists(st.tuples(st.floats(0.0, 3.0), st.integers(0, 80)), min_size=1, max_size=12),
    seen=st.integers(1, 12),
    tau=st.sampled_from([0.1, 0.5, 2.0]),
)
def test_upper_bounds_from_the_groups_seen_hold_for_the_final_allocation(budget, groups, seen, tau):
    """Whatever groups come later, no group seen so far is given more than its bound: the candidate store
    may drop what lies beyond it without changing the selection."""
    entropies, capacities = [h for h, _ in groups], [c for _, c in groups]
    seen = min(seen, len(groups))
    bounds = allocation_upper_bounds(budget, [-h / tau for h in entropies[:seen]], capacities[:seen])
    final = allocate_budget(budget, entropies, capacities, tau)
    assert all(f <= b for f, b in zip(final[:seen], bounds))
    assert all(b <= c for b, c in zip(bounds, capacities[:seen]))


def test_upper_bounds_shrink_as_groups_arrive():
    caps = [100] * 8
    alone = allocation_upper_bounds(64, [0.0], caps[:1])
    eight = allocation_upper_bounds(64, [0.0] * 8, caps)
    assert alone == [65] and eight == [9] * 8  # 64 / 8 = 8, plus one for rounding
    assert allocation_upper_bounds(64, [0.0, 0.0], [10, 20]) == [10, 20]  # all saturated: the capacities


@given(st.lists(entropies, min_size=1, max_size=10), st.integers(1, 2000),
       st.floats(min_value=5e-324, max_value=1e-300))
@settings(max_examples=200, deadline=None)
def test_a_tiny_tau_keeps_the_total_and_the_order(hs, budget, tau):
    """A valid tau as small as a float gets (5e-324): -H / tau would be -inf for every group (NaN weights)."""
    alloc = allocate_budget(budget, hs, [10**6] * len(hs), tau)
    assert sum(alloc) == budget
    assert all(alloc[i] >= alloc[j] for i in range(len(hs)) for j in range(len(hs)) if hs[i] < hs[j])


def test_a_tiny_tau_gives_everything_to_the_most_confident_group():
    assert allocate_budget(100, [0.5, 1.0, 2.0], [1000] * 3, tau=5e-324) == [100, 0, 0]
    assert allocate_budget(100, [0.5, 1.0, 2.0], [60, 1000, 1000], tau=5e-324) == [60, 40, 0]
