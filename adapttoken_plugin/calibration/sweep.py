"""Lite's stop rule over every theta at once, and the two rules that choose theta from it. Pure Python.

AdaptToken-Lite visits groups 0, 1, 2, ... and stops after the first group g with g + 1 >= min_groups and
entropy H_g <= theta. On one question the number of groups it visits is a step function of theta that
changes only at the question's "record lows": the groups, from group min_groups - 1 on, whose entropy is
lower than that of every earlier such group (a later group of equal or higher entropy can never be the
first to qualify). Stopping at the last group skips nothing, so the last group is no step. Over many
questions the steps of all questions together give the whole trade-off exactly, with no grid of thetas:

    rows = theta_table(entropies, min_groups=1)          # one row per theta where anything changes
    choose_by_skip(rows, 0.5)                            # the smallest theta that skips >= half the groups
    choose_by_accuracy(rows, reference_correct=40, questions=50, max_loss=0.02)

Every theta in a row holds from that value up to, not including, the next row's theta: on these
questions Lite behaves the same anywhere in between. The first row (theta None) is theta below every
step: Lite visits every group, as AdaptToken does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import groupby
from typing import Any

from ..errors import CalibrationError, ConfigError


@dataclass(frozen=True)
class ThetaRow:
    """Lite on the calibration questions at one theta.

    Attributes:
        theta: the smallest theta of this row (nats); None for "below every step" (no early stop).
        skipped_groups: group passes skipped, summed over the questions.
        skipped: skipped_groups / all groups of the questions (the share of AdaptToken's group passes Lite saves).
        groups_visited: mean groups visited per question.
        correct: questions answered correctly (None when answers were not replayed).
        accuracy: correct / questions (None when answers were not replayed).
        seconds: mean measured group-pass seconds per question of the groups visited (None when not given).
    """

    theta: float | None
    skipped_groups: int
    skipped: float
    groups_visited: float
    correct: int | None = None
    accuracy: float | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stop_points(entropies: Sequence[float], min_groups: int = 1) -> list[tuple[float, int]]:
    """Where Lite's stop on one question moves as theta grows: (entropy, groups visited) pairs, entropies
    descending and visits ascending.

    For a theta at least a pair's entropy and below the entropy of the pair before it, Lite visits that pair's
    number of groups; below the last pair's entropy it visits all of them. The pairs are the record lows of
    `entropies[min_groups - 1 : -1]` (see the module docstring).

    Args:
        entropies: (G,) each group's answer entropy in nats, in visiting order.
        min_groups: Lite's `min_groups`.
    """
    points: list[tuple[float, int]] = []
    low = math.inf
    for index in range(min_groups - 1, len(entropies) - 1):
        if entropies[index] < low:
            low = entropies[index]
            points.append((low, index + 1))
    return points


def check_entropies(entropies: Sequence[Sequence[float]], min_groups: int) -> None:
    """Raise CalibrationError for no questions, a question without groups or an entropy that is not a finite
    number >= 0; ConfigError for min_groups < 1."""
    if isinstance(min_groups, bool) or not isinstance(min_groups, int) or min_groups < 1:
        raise ConfigError(f"min_groups={min_groups!r} is out of range: expected an integer >= 1")
    if not entropies:
        raise CalibrationError("no calibration questions: give at least one")
    for q, values in enumerate(entropies):
        if not values:
            raise CalibrationError(f"calibration question {q} has no groups")
        for g, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise CalibrationError(f"calibration question {q}, group {g}: entropy {value!r} is not a finite "
                                       "number >= 0 (nats)")


def theta_table(entropies: Sequence[Sequence[float]], min_groups: int = 1,
                correct: Sequence[Mapping[int, bool]] | None = None,
                seconds: Sequence[Sequence[float]] | None = None) -> list[ThetaRow]:
    """Lite replayed on calibration questions at every theta where its behaviour changes, theta ascending.

    Args:
        entropies: per question, (G_q,) the entropy of every group in visiting order (nats), as AdaptToken's
            group passes over every group record it.
        min_groups: Lite's `min_groups`.
        correct: per question, {groups visited: whether Lite's answer after visiting that many is correct}, for
            every count some theta gives (`stop_points`' visits and G_q); None: no accuracy column.
        seconds: per question, (G_q,) measured seconds of each group pass; None: no seconds column.
    Returns:
        The first row with theta None (no early stop), then one row per distinct step entropy, ascending; the
        skipped share never decreases from row to row.
    Raises:
        CalibrationError: no questions, an empty question, an entropy that is not a finite number >= 0, lengths
            of `correct` or `seconds` that do not match, or an answer missing for a count the table needs.
    """
    check_entropies(entropies, min_groups)
    for name, values in (("correct", correct), ("seconds", seconds)):
        if values is not None and len(values) != len(entropies):
            raise CalibrationError(f"{name} has {len(values)} questions, entropies {len(entropies)}")
    if seconds is not None:
        for q, (per_group, values) in enumerate(zip(seconds, entropies)):
            if len(per_group) != len(values):
                raise CalibrationError(f"calibration question {q}: {len(per_group)} group seconds for "
                                       f"{len(values)} groups")
    sizes = [len(values) for values in entropies]
    total = sum(sizes)
    visits = list(sizes)
    elapsed = None if seconds is None else [_prefix_sums(per_group) for per_group in seconds]

    def answer(q: int, n: int) -> bool:
        if n not in correct[q]:
            needed = sorted({visited for _, visited in stop_points(entropies[q], min_groups)} | {sizes[q]})
            raise CalibrationError(f"calibration question {q}: no answer for {n} groups visited (the table needs "
                                   f"one for each of {needed})")
        return bool(correct[q][n])

    n_correct = None if correct is None else sum(answer(q, n) for q, n in enumerate(visits))
    spent = None if elapsed is None else sum(elapsed[q][n] for q, n in enumerate(visits))

    def row(theta: float | None) -> ThetaRow:
        skipped = total - sum(visits)
        return ThetaRow(theta, skipped, skipped / total, sum(visits) / len(visits), n_correct,
                        None if n_correct is None else n_correct / len(visits),
                        None if spent is None else spent / len(visits))

    rows = [row(None)]
    events = sorted((h, q, n) for q, values in enumerate(entropies) for h, n in stop_points(values, min_groups))
    for theta, same in groupby(events, key=lambda event: event[0]):
        for _, q, n in same:
            if n_correct is not None:
                n_correct += answer(q, n) - answer(q, visits[q])
            if spent is not None:
                spent += elapsed[q][n] - elapsed[q][visits[q]]
            visits[q] = n
        rows.append(row(float(theta)))
    return rows


def _prefix_sums(values: Sequence[float]) -> list[float]:
    """[0, v0, v0 + v1, ...]: element n is the sum of the first n values."""
    out = [0.0]
    for value in values:
        out.append(out[-1] + float(value))
    return out


def check_target_skip(target: float) -> None:
    """Raise ConfigError unless 0 < target < 1."""
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target < 1:
        raise ConfigError(f"target skip share {target!r} is out of range: expected a number between 0 and 1 "
                          "(exclusive), the share of group passes Lite should skip")


def check_max_loss(max_loss: float) -> None:
    """Raise ConfigError unless 0 <= max_loss <= 1."""
    if isinstance(max_loss, bool) or not isinstance(max_loss, (int, float)) or not 0 <= max_loss <= 1:
        raise ConfigError(f"max_loss={max_loss!r} is out of range: expected an accuracy loss between 0 and 1 "
                          "(0.02 = two points), compared with AdaptToken over every group")


def choose_by_skip(rows: Sequence[ThetaRow], target: float) -> ThetaRow:
    """The row of the smallest theta at which Lite skips at least `target` of the group passes.

    Raises:
        ConfigError: target not in (0, 1).
        CalibrationError: no theta skips that much on these questions (the message names the most any does).
    """
    check_target_skip(target)
    for row in rows:
        if row.theta is not None and row.skipped >= target:
            return row
    most = rows[-1]
    raise CalibrationError(
        f"no theta makes Lite skip {target:g} of the group passes on these questions: at most "
        f"{most.skipped:.4g} (theta >= {most.theta!r}), since it visits at least min_groups groups and stops "
        "only at a group other than the last; give a smaller target skip share, or lower min_groups")


def choose_by_accuracy(rows: Sequence[ThetaRow], reference_correct: int, questions: int,
                       max_loss: float) -> ThetaRow | None:
    """The row of the largest theta whose accuracy is at least AdaptToken's minus `max_loss`, or None when no
    theta that stops early anywhere qualifies.

    Compared in questions: a row qualifies when correct >= reference_correct - max_loss * questions (so
    max_loss 0.1 on 10 questions allows exactly one fewer). Accuracy need not fall as theta grows; the rule
    takes the largest qualifying theta, not the end of the first qualifying run.

    Raises:
        ConfigError: max_loss not in [0, 1].
        CalibrationError: rows without answers.
    """
    check_max_loss(max_loss)
    if any(row.correct is None for row in rows):
        raise CalibrationError("the accuracy rule needs the answers at every stop: replay them (answers=True)")
    allowed = reference_correct - max_loss * questions - 1e-9 * questions  # tolerance: max_loss * questions in floats
    chosen = [row for row in rows if row.theta is not None and row.correct >= allowed]
    return chosen[-1] if chosen else None


RULES = ("skip", "accuracy")


@dataclass(frozen=True)
class Calibration:
    """The theta chosen for a model from calibration questions, and the trade-off it was chosen from.

    Attributes:
        rule: "skip" (the smallest theta skipping at least `target_skip` of the group passes) or "accuracy" (the
            largest theta within `max_loss` of AdaptToken's accuracy).
        theta: the chosen theta (nats), one of the table's; None when no theta that stops early qualifies (the
            accuracy rule only: use AdaptToken).
        skipped: share of the group passes Lite skips at theta (0 for None).
        accuracy: Lite's accuracy at theta, replayed (None when answers were not replayed).
        reference_accuracy: AdaptToken's accuracy over every group (None when answers were not replayed).
        min_groups: Lite's `min_groups` the table was made with.
        questions, groups: the calibration questions and their groups in all.
        table: `theta_table`'s rows.
    """

    rule: str
    theta: float | None
    skipped: float
    accuracy: float | None
    reference_accuracy: float | None
    min_groups: int
    questions: int
    groups: int
    target_skip: float | None
    max_loss: float | None
    table: tuple[ThetaRow, ...]

    def settings(self) -> dict[str, Any]:
        """The AdaptTokenConfig settings to use: Lite with this theta and min_groups, or AdaptToken when no theta
        qualified."""
        if self.theta is None:
            return {"selector": "adapttoken"}
        return {"selector": "adapttoken-lite", "theta": self.theta, "min_groups": self.min_groups}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["table"] = [row.to_dict() for row in self.table]
        out["settings"] = self.settings()
        return out


def calibrate(entropies: Sequence[Sequence[float]], min_groups: int = 1, *, target_skip: float | None = None,
              max_loss: float | None = None, correct: Sequence[Mapping[int, bool]] | None = None,
              reference: Sequence[bool] | None = None,
              seconds: Sequence[Sequence[float]] | None = None) -> Calibration:
    """Choose Lite's theta from calibration questions by one rule: `target_skip` or `max_loss` (exactly one).

    Args:
        entropies, min_groups, correct, seconds: as `theta_table`.
        target_skip: the "skip" rule: the smallest theta at which Lite skips at least this share of the group
            passes (0 < target_skip < 1).
        max_loss: the "accuracy" rule: the largest theta whose replayed accuracy is at least AdaptToken's minus
            this (0 <= max_loss <= 1); needs `correct` and `reference`.
        reference: per question, whether AdaptToken over every group answers it correctly.
    Raises:
        ConfigError: neither or both rules, a target or loss out of range, min_groups < 1.
        CalibrationError: bad entropies, missing answers, or a target skip no theta reaches.
    """
    if (target_skip is None) == (max_loss is None):
        raise ConfigError("give exactly one rule: target_skip (a share of group passes to skip) or max_loss (an "
                          "accuracy loss against AdaptToken)")
    if max_loss is not None:
        check_max_loss(max_loss)
        if correct is None or reference is None:
            raise CalibrationError("the accuracy rule needs the replayed answers (correct) and AdaptToken's "
                                   "(reference)")
    else:
        check_target_skip(target_skip)
    if reference is not None and len(reference) != len(entropies):
        raise CalibrationError(f"reference has {len(reference)} questions, entropies {len(entropies)}")
    rows = theta_table(entropies, min_groups, correct, seconds)
    reference_correct = None if reference is None else sum(bool(r) for r in reference)
    if max_loss is not None:
        chosen = choose_by_accuracy(rows, reference_correct, len(entropies), max_loss)
        rule = "accuracy"
    else:
        chosen = choose_by_skip(rows, target_skip)
        rule = "skip"
    at = rows[0] if chosen is None else chosen
    return Calibration(
        rule=rule, theta=None if chosen is None else chosen.theta, skipped=at.skipped, accuracy=at.accuracy,
        reference_accuracy=None if reference_correct is None else reference_correct / len(entropies),
        min_groups=min_groups, questions=len(entropies), groups=sum(len(v) for v in entropies),
        target_skip=target_skip, max_loss=max_loss, table=tuple(rows))
