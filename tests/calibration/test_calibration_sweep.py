"""The theta -> (groups skipped, accuracy) table and the two rules that choose theta (calibration/sweep.py).

Expected values are worked out by hand in the comments, or checked against Lite's own stop rule
(`replay_visits` with the registered `adapttoken-lite` selector) and a by-hand loop.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adapttoken_plugin import SELECTORS, AdaptTokenConfig, CalibrationError, ConfigError
from adapttoken_plugin.calibration import calibrate, choose_by_accuracy, choose_by_skip, stop_points, theta_table
from adapttoken_plugin.layout import GroupEvidence
from adapttoken_plugin.stage import replay_visits


def visits_by_hand(entropies, theta, min_groups):
    """Lite's stop rule written out: the first group, from the min_groups-th on, with entropy <= theta."""
    for n, h in enumerate(entropies, start=1):
        if n >= min_groups and h <= theta:
            return n
    return len(entropies)


def visits_by_selector(entropies, theta, min_groups):
    """Groups the registered adapttoken-lite selector visits, replayed as the stage replays it."""
    lite = SELECTORS.get("adapttoken-lite")(AdaptTokenConfig(selector="adapttoken-lite", theta=theta,
                                                             min_groups=min_groups))
    groups = [GroupEvidence(g, torch.tensor([g]), torch.tensor([g]), entropy=h) for g, h in enumerate(entropies)]
    return len(replay_visits(lite, groups))


def share(entropies, theta, min_groups, visits=visits_by_hand):
    total = sum(len(e) for e in entropies)
    return (total - sum(visits(e, theta, min_groups) for e in entropies)) / total


def thetas(rows):
    return [row.theta for row in rows]


# --- hand-made cases -------------------------------------------------------------------------------------------

def test_one_question():
    # [1.0, 0.5, 0.8, 0.2], min_groups 1: record lows 1.0 (group 1) and 0.5 (group 2); 0.8 is above 0.5, and
    # stopping at the last group (0.2) skips nothing. theta >= 0.5: 2 of 4 visited; theta >= 1.0: 1 of 4.
    assert stop_points([1.0, 0.5, 0.8, 0.2]) == [(1.0, 1), (0.5, 2)]
    rows = theta_table([[1.0, 0.5, 0.8, 0.2]])
    assert thetas(rows) == [None, 0.5, 1.0]
    assert [r.skipped_groups for r in rows] == [0, 2, 3]
    assert [r.skipped for r in rows] == [0.0, 0.5, 0.75]
    assert [r.groups_visited for r in rows] == [4.0, 2.0, 1.0]
    assert choose_by_skip(rows, 0.5).theta == 0.5  # exactly 0.5 attains 0.5
    assert choose_by_skip(rows, 0.6).theta == 1.0
    with pytest.raises(CalibrationError, match="at most 0.75"):
        choose_by_skip(rows, 0.8)


def test_ties_across_and_within_questions():
    # q1 [0.3, 0.3, 0.1, 0.9]: records 0.3 (1 group), 0.1 (3); the second 0.3 is no record.
    # q2 [0.9, 0.3, 0.5, 0.5]: records 0.9 (1), 0.3 (2). 8 groups in all.
    # theta 0.1: 3 + 4 visited, 1/8 skipped; 0.3 (both questions move): 1 + 2, 5/8; 0.9: 1 + 1, 6/8.
    rows = theta_table([[0.3, 0.3, 0.1, 0.9], [0.9, 0.3, 0.5, 0.5]])
    assert thetas(rows) == [None, 0.1, 0.3, 0.9]
    assert [r.skipped for r in rows] == [0.0, 1 / 8, 5 / 8, 6 / 8]
    assert choose_by_skip(rows, 0.125).theta == 0.1
    assert choose_by_skip(rows, 0.2).theta == 0.3
    assert choose_by_skip(rows, 5 / 8).theta == 0.3
    assert choose_by_skip(rows, 0.7).theta == 0.9


def test_min_groups():
    # min_groups 2 on [0.1, 0.6, 0.4, 0.2, 0.7]: group 0 cannot stop Lite, so 0.1 is no step; records from group 1:
    # 0.6 (2 visited), 0.4 (3), 0.2 (4); the last group is no step. At most 3 of 5 skipped.
    assert stop_points([0.1, 0.6, 0.4, 0.2, 0.7], min_groups=2) == [(0.6, 2), (0.4, 3), (0.2, 4)]
    rows = theta_table([[0.1, 0.6, 0.4, 0.2, 0.7]], min_groups=2)
    assert thetas(rows) == [None, 0.2, 0.4, 0.6]
    assert [r.skipped_groups for r in rows] == [0, 1, 2, 3]
    assert choose_by_skip(rows, 0.3).theta == 0.4
    with pytest.raises(CalibrationError, match="at most 0.6"):
        choose_by_skip(rows, 0.61)
    # min_groups 1: group 0 (0.1) stops it at once for any theta >= 0.1
    assert thetas(theta_table([[0.1, 0.6, 0.4, 0.2, 0.7]])) == [None, 0.1]


def test_a_question_no_theta_can_stop_early():
    # q2 has 2 groups and min_groups 2: only its last group may stop Lite, which skips nothing, whatever theta.
    # q1 [0.5, 0.2, 0.9]: one step, 0.2 (2 of 3 visited). 5 groups: at most 1/5 skipped.
    rows = theta_table([[0.5, 0.2, 0.9], [0.9, 0.8]], min_groups=2)
    assert thetas(rows) == [None, 0.2]
    assert [r.skipped for r in rows] == [0.0, 0.2]
    assert [r.groups_visited for r in rows] == [2.5, 2.0]
    assert choose_by_skip(rows, 0.2).theta == 0.2
    with pytest.raises(CalibrationError, match="at most 0.2"):
        choose_by_skip(rows, 0.3)
    # a low last group is no step either; nothing at all can be skipped here
    rows = theta_table([[0.9, 0.1], [0.7]], min_groups=2)
    assert thetas(rows) == [None]
    with pytest.raises(CalibrationError, match="no theta makes Lite skip 0.5"):
        choose_by_skip(rows, 0.5)


def test_accuracy_rule():
    # q1 [0.9, 0.2, 0.5, 0.1]: steps 0.9 (1 visited), 0.2 (2); q2 [0.4, 0.6, 0.3]: step 0.4 (1). 7 groups.
    entropies = [[0.9, 0.2, 0.5, 0.1], [0.4, 0.6, 0.3]]
    correct = [{1: False, 2: True, 4: True}, {1: True, 3: True}]
    # visited (q1, q2) and correct: none (4, 3) 2/2; 0.2 (2, 3) 2/2; 0.4 (2, 1) 2/2; 0.9 (1, 1) 1/2
    rows = theta_table(entropies, correct=correct)
    assert thetas(rows) == [None, 0.2, 0.4, 0.9]
    assert [r.correct for r in rows] == [2, 2, 2, 1]
    assert [r.accuracy for r in rows] == [1.0, 1.0, 1.0, 0.5]
    assert [r.skipped_groups for r in rows] == [0, 2, 4, 5]
    assert choose_by_accuracy(rows, reference_correct=2, questions=2, max_loss=0).theta == 0.4
    assert choose_by_accuracy(rows, 2, 2, max_loss=0.49).theta == 0.4
    assert choose_by_accuracy(rows, 2, 2, max_loss=0.5).theta == 0.9  # one question of two may be lost
    result = calibrate(entropies, max_loss=0, correct=correct, reference=[True, True])
    assert (result.rule, result.theta, result.skipped, result.accuracy, result.reference_accuracy) == \
        ("accuracy", 0.4, 4 / 7, 1.0, 1.0)
    assert result.settings() == {"selector": "adapttoken-lite", "theta": 0.4, "min_groups": 1}


def test_accuracy_rule_takes_the_largest_qualifying_theta_and_can_find_none():
    entropies = [[0.9, 0.2, 0.5, 0.1], [0.4, 0.6, 0.3]]
    # accuracy dips at 0.2 and 0.4 (q1 wrong after 2 groups) and recovers at 0.9 (right after 1): 0.9 is chosen
    dip = [{1: True, 2: False, 4: True}, {1: True, 3: True}]
    rows = theta_table(entropies, correct=dip)
    assert [r.correct for r in rows] == [2, 1, 1, 2]
    assert choose_by_accuracy(rows, 2, 2, max_loss=0).theta == 0.9
    # every early stop loses a question: nothing qualifies; the result says use AdaptToken
    worse = [{1: False, 2: False, 4: True}, {1: True, 3: True}]
    result = calibrate(entropies, max_loss=0, correct=worse, reference=[True, True])
    assert result.theta is None and result.skipped == 0.0 and result.accuracy == 1.0
    assert result.settings() == {"selector": "adapttoken"}
    # the loss counts questions: 0.1 of 10 questions allows exactly one fewer, 0.0999 none
    ten = [[0.5, 0.9]] * 10
    answers = [{1: q != 0, 2: True} for q in range(10)]  # stopping after group 1 loses question 0
    rows = theta_table(ten, correct=answers)
    assert choose_by_accuracy(rows, 10, 10, max_loss=0.1).theta == 0.5
    assert choose_by_accuracy(rows, 10, 10, max_loss=0.0999) is None
    # 0.29 * 100 is 28.999999999999996 in floating point: still 29 questions (AdaptToken 29 right, Lite none)
    answers = [{1: False, 2: q < 29} for q in range(100)]
    assert choose_by_accuracy(theta_table([[0.5, 0.9]] * 100, correct=answers), 29, 100, max_loss=0.29).theta == 0.5


def test_skip_rule_reports_accuracy_when_answers_are_given_and_seconds():
    # q1 [0.9, 0.2, 0.5, 0.1] seconds 1, 2, 3, 4; q2 [0.4, 0.6, 0.3] seconds 5, 6, 7
    # none: (10 + 18) / 2 = 14; 0.2: q1 2 groups (3) + 18 -> 10.5; 0.4: 3 + 5 -> 4; 0.9: 1 + 5 -> 3
    rows = theta_table([[0.9, 0.2, 0.5, 0.1], [0.4, 0.6, 0.3]], seconds=[[1, 2, 3, 4], [5, 6, 7]])
    assert [r.seconds for r in rows] == [14.0, 10.5, 4.0, 3.0]
    assert all(r.accuracy is None for r in rows)
    result = calibrate([[0.9, 0.2, 0.5, 0.1], [0.4, 0.6, 0.3]], target_skip=0.5,
                       correct=[{1: False, 2: True, 4: True}, {1: True, 3: True}])
    assert (result.rule, result.theta, result.skipped, result.accuracy) == ("skip", 0.4, 4 / 7, 1.0)


def test_bad_inputs_are_refused_with_a_clear_error():
    with pytest.raises(CalibrationError, match="no calibration questions"):
        theta_table([])
    with pytest.raises(CalibrationError, match="question 1 has no groups"):
        theta_table([[0.1], []])
    for bad in (math.nan, math.inf, -0.1, None, "0.2"):
        with pytest.raises(CalibrationError, match="question 0, group 1: entropy"):
            theta_table([[0.1, bad]])
    with pytest.raises(ConfigError, match="min_groups=0"):
        theta_table([[0.1]], min_groups=0)
    rows = theta_table([[0.5, 0.1, 0.2]])
    for target in (0, 1, -0.2, 1.5, math.nan):
        with pytest.raises(ConfigError, match="target skip share"):
            choose_by_skip(rows, target)
    for loss in (-0.01, 1.01, math.nan):
        with pytest.raises(ConfigError, match="max_loss"):
            calibrate([[0.5, 0.1]], max_loss=loss, correct=[{1: True, 2: True}], reference=[True])
    with pytest.raises(ConfigError, match="exactly one rule"):
        calibrate([[0.5, 0.1]])
    with pytest.raises(ConfigError, match="exactly one rule"):
        calibrate([[0.5, 0.1]], target_skip=0.5, max_loss=0.1)
    with pytest.raises(CalibrationError, match="needs the replayed answers"):
        calibrate([[0.5, 0.1]], max_loss=0.1)
    with pytest.raises(CalibrationError, match="no answer for 1 groups visited"):
        theta_table([[0.5, 0.1]], correct=[{2: True}])
    with pytest.raises(CalibrationError, match="2 group seconds for 3 groups"):
        theta_table([[0.5, 0.1, 0.3]], seconds=[[1.0, 2.0]])


# --- properties ---------------------------------------------------------------------------------------------------

ENTROPY = st.one_of(st.sampled_from([0.0, 0.1, 0.5, 1.0, 1.386]), st.floats(0, 3, allow_subnormal=False))
QUESTIONS = st.lists(st.lists(ENTROPY, min_size=1, max_size=7), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None)
@given(QUESTIONS, st.integers(1, 4), st.data())
def test_the_table_is_lite_replayed_at_every_theta(entropies, min_groups, data):
    correct = [{n: data.draw(st.booleans()) for n in range(1, len(e) + 1)} for e in entropies]
    rows = theta_table(entropies, min_groups, correct=correct)
    assert rows[0].theta is None and rows[0].skipped_groups == 0
    steps = thetas(rows)[1:]
    assert steps == sorted(set(steps))  # ascending, distinct
    for before, row in zip(rows, rows[1:]):
        # at its theta the row is what Lite's own stop rule gives ...
        assert row.skipped == share(entropies, row.theta, min_groups, visits_by_selector)
        assert row.correct == sum(c[visits_by_hand(e, row.theta, min_groups)] for e, c in zip(entropies, correct))
        # ... and just below it, the row before (so each row holds up to the next theta)
        below = math.nextafter(row.theta, -math.inf)
        assert before.skipped == share(entropies, below, min_groups)
        assert before.skipped < row.skipped  # monotone, and a row is a change: a larger theta visits fewer
    # above the last step nothing changes any more
    assert rows[-1].skipped == share(entropies, math.inf, min_groups)


@settings(max_examples=150, deadline=None)
@given(QUESTIONS, st.integers(1, 4), st.floats(0, 1, exclude_min=True, exclude_max=True))
def test_skip_rule_chooses_the_smallest_theta_reaching_the_target(entropies, min_groups, target):
    rows = theta_table(entropies, min_groups)
    if share(entropies, math.inf, min_groups) < target:
        with pytest.raises(CalibrationError):
            choose_by_skip(rows, target)
        return
    theta = choose_by_skip(rows, target).theta
    assert share(entropies, theta, min_groups, visits_by_selector) >= target
    assert share(entropies, math.nextafter(theta, -math.inf), min_groups) < target
    assert theta in {h for e in entropies for h in e}


@settings(max_examples=100, deadline=None)
@given(QUESTIONS, st.integers(1, 3), st.floats(0, 1), st.data())
def test_accuracy_rule_chooses_the_largest_theta_within_the_loss(entropies, min_groups, max_loss, data):
    correct = [{n: data.draw(st.booleans()) for n in range(1, len(e) + 1)} for e in entropies]
    reference = sum(data.draw(st.booleans()) for _ in entropies)
    chosen = choose_by_accuracy(theta_table(entropies, min_groups, correct=correct), reference, len(entropies),
                                max_loss)

    def within(theta):  # Lite's accuracy at theta, by hand, is within max_loss of the reference
        right = sum(c[visits_by_hand(e, theta, min_groups)] for e, c in zip(entropies, correct))
        return right / len(entropies) >= reference / len(entropies) - max_loss - 1e-9

    def stops_early(theta):
        return any(visits_by_hand(e, theta, min_groups) < len(e) for e in entropies)

    def behaviour(theta):
        return [visits_by_hand(e, theta, min_groups) for e in entropies]

    candidates = sorted({h for e in entropies for h in e})
    if chosen is None:
        assert not any(within(h) and stops_early(h) for h in candidates)
        return
    # the largest: no theta that behaves otherwise and lies above it qualifies; the theta reported is the smallest
    # of those that behave as it does (the row's start)
    assert chosen.theta in candidates and within(chosen.theta) and stops_early(chosen.theta)
    assert not any(within(h) for h in candidates if h > chosen.theta and behaviour(h) != behaviour(chosen.theta))
    assert behaviour(math.nextafter(chosen.theta, -math.inf)) != behaviour(chosen.theta)
