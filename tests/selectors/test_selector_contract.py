"""The contract every registered selector keeps, on synthetic evidence and with no model.

Parametrised over `SELECTORS.names()`: a selector is tested here the moment it is registered, whether its
file is in `adapttoken_plugin/selectors/` or it comes from another distribution's entry point.

- kept ids: 1-D int64, strictly ascending (so unique), inside the video;
- exactly min(budget, visual tokens) kept, unless the class declares `exact_budget = False`;
- one budget per visited group, each between 0 and the group's size;
- deterministic (a fresh instance on a copy of the evidence decides the same) and the evidence unchanged;
- never touches the model (any `torch.nn.Module` call while it selects fails the test);
- its declaration is honest: a selection setting outside `reads` does not change its decision;
- a merging selector's merged tokens are kept tokens with one feature row each, and only a selector that declares
  `merges` returns any.

A selector that declares `needs_features` gets every token's features, (N, FEATURE_DIM) random rows (its group
passes, if any, see the same rows).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapttoken_plugin import SELECTORS, AdaptTokenConfig
from adapttoken_plugin.config import settings_in
from adapttoken_plugin.layout import GroupEvidence, VideoLayout, interleaved_groups
from adapttoken_plugin.selectors.base import Selector
from adapttoken_plugin.stage import _bound_candidates, keep_candidates, replay_visits

NAMES = SELECTORS.names()
FEATURE_DIM = 8

# another valid value for each selection setting: a selector that does not declare the setting must decide the same
OTHER_VALUE = {
    "budget": lambda v: v + 3, "tau": lambda v: v * 4, "theta": lambda v: 5.0, "min_groups": lambda v: v + 2,
    "overselect": lambda v: v + 0.4, "dedup": lambda v: not v, "dedup_window": lambda v: 0, "seed": lambda v: v + 1,
    "vidcom2_temperature": lambda v: v * 50, "vidcom2_channel_fraction": lambda v: 1.0, "evs_threshold": lambda v: 0.3,
    "fastvid_segment_threshold": lambda v: 0.2, "fastvid_min_segments": lambda v: v - 6,
    "fastvid_anchor_step": lambda v: 1, "fastvid_knn": lambda v: 1, "framefusion_threshold": lambda v: 0.1,
}


def synthetic_features(name: str, layout: VideoLayout, seed: int) -> torch.Tensor | None:
    """(N, FEATURE_DIM) random features of every token for a selector that declares `needs_features`, else None."""
    if not SELECTORS.get(name).needs_features:
        return None
    return torch.randn(layout.num_tokens, FEATURE_DIM, generator=torch.Generator().manual_seed(seed + 1))


def synthetic_evidence(name: str, layout: VideoLayout, units_per_group: int, config: AdaptTokenConfig,
                       seed: int, video_features: torch.Tensor | None = None) -> list[GroupEvidence]:
    """Every group's evidence as the stage leaves it: bare groups for a selector without group passes; else random
    scores, entropies in [0, 1.4] nats and the best ceil(overselect * budget) candidates with their features (the
    rows of `video_features` when given, as the stage takes them)."""
    gen = torch.Generator().manual_seed(seed)
    groups = []
    for g, units in enumerate(interleaved_groups(layout.num_units, units_per_group)):
        group = GroupEvidence(g, units, layout.token_ids_of_units(units))
        if SELECTORS.get(name).needs_group_pass:
            group.entropy = float(torch.rand((), generator=gen)) * 1.4
            scores = torch.rand(group.num_tokens, generator=gen)
            features = torch.randn(group.num_tokens, FEATURE_DIM, generator=gen)
            if video_features is not None:
                features = video_features[group.token_ids]
            keep = min(group.num_tokens, math.ceil(config.overselect * config.budget))
            keep_candidates(group, scores, features, keep, "cpu")
        groups.append(group)
    return groups


def decide(name: str, layout: VideoLayout, groups: list[GroupEvidence], config: AdaptTokenConfig,
           features: torch.Tensor | None = None):
    """The visited groups and the selection, as `Stage.finish` asks for it (with `features` when declared)."""
    selector = SELECTORS.get(name)(config)
    visited = replay_visits(selector, groups)
    if selector.needs_features:
        return visited, selector.select(layout, visited, features=features)
    return visited, selector.select(layout, visited)


cases = st.fixed_dictionaries({
    "num_units": st.integers(1, 20), "grid_h": st.integers(1, 3), "grid_w": st.integers(1, 3),
    "units_per_group": st.integers(1, 6), "budget_fraction": st.floats(0.01, 1.5), "seed": st.integers(0, 2**16),
    "tau": st.sampled_from([0.5, 2.0]), "theta": st.sampled_from([0.0, 0.2, 1.0]),
})
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _setup(name: str, case: dict):
    layout = VideoLayout(num_units=case["num_units"], grid_h=case["grid_h"], grid_w=case["grid_w"])
    budget = max(1, round(case["budget_fraction"] * layout.num_tokens))
    config = AdaptTokenConfig(selector=name, budget=budget, tau=case["tau"], theta=case["theta"],
                              frames_per_group=case["units_per_group"])
    features = synthetic_features(name, layout, case["seed"])
    groups = synthetic_evidence(name, layout, case["units_per_group"], config, case["seed"], features)
    return layout, config, groups, features


def _merged(selection) -> tuple:
    """A selection's merged tokens, comparable with ==."""
    if selection.merged_ids is None:
        return None, None
    return selection.merged_ids.tolist(), selection.merged_features.tolist()


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(case=cases)
def test_kept_ids_are_ascending_unique_in_range_and_the_budget_is_met(name, case):
    layout, config, groups, features = _setup(name, case)
    visited, selection = decide(name, layout, groups, config, features)
    kept = selection.kept_token_ids
    assert kept.dtype == torch.long and kept.ndim == 1
    assert bool((kept[1:] > kept[:-1]).all()), "kept ids must be strictly ascending (temporal, then raster order)"
    assert len(kept) == 0 or (0 <= int(kept[0]) and int(kept[-1]) < layout.num_tokens)
    if SELECTORS.get(name).exact_budget:
        assert len(kept) == min(config.budget, layout.num_tokens)
    else:
        assert len(kept) <= layout.num_tokens
    assert selection.group_budgets is not None and len(selection.group_budgets) == len(visited)
    assert all(0 <= b <= g.num_tokens for b, g in zip(selection.group_budgets, visited))
    _check_merged(name, selection, layout, config)


def _check_merged(name: str, selection, layout: VideoLayout, config: AdaptTokenConfig) -> None:
    """Merged tokens are kept tokens, ascending, with one feature row each; only a `merges` selector returns any,
    and none when every token is kept (the model then sees the video unchanged)."""
    merged, kept = selection.merged_ids, selection.kept_token_ids
    if not SELECTORS.get(name).merges or merged is None:
        assert merged is None and selection.merged_features is None
        return
    assert merged.dtype == torch.long and bool((merged[1:] > merged[:-1]).all())
    assert bool(torch.isin(merged, kept).all()), "a merged token must be one of the kept tokens"
    assert selection.merged_features.shape == (len(merged), FEATURE_DIM)
    if config.budget >= layout.num_tokens:
        assert len(merged) == 0


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(case=cases)
def test_deterministic_and_the_evidence_is_left_as_it_was(name, case):
    layout, config, groups, features = _setup(name, case)
    before = copy.deepcopy(groups)
    features_before = None if features is None else features.clone()
    first = decide(name, layout, groups, config, features)[1]
    for group, copied in zip(groups, before):  # evidence is reused for other budgets: a selector must not edit it
        for field in ("scores", "candidate_ids", "candidate_features", "token_ids", "units"):
            a, b = getattr(group, field), getattr(copied, field)
            assert (a is None and b is None) or torch.equal(a, b), field
        assert group.entropy == copied.entropy
    assert features is None or torch.equal(features, features_before), "the video's features were edited"
    second = decide(name, layout, copy.deepcopy(before), config, None if features is None else features.clone())[1]
    assert torch.equal(first.kept_token_ids, second.kept_token_ids)
    assert first.group_budgets == second.group_budgets
    assert _merged(first) == _merged(second)


@pytest.mark.parametrize("name", NAMES)
def test_never_touches_a_model(name, monkeypatch):
    layout, config, groups, features = _setup(name, {"num_units": 12, "grid_h": 2, "grid_w": 2, "units_per_group": 3,
                                                     "budget_fraction": 0.3, "seed": 1, "tau": 2.0, "theta": 0.2})

    def refuse(*args, **kwargs):
        raise AssertionError(f"selector {name!r} called a torch module while selecting")

    monkeypatch.setattr(torch.nn.Module, "__call__", refuse)
    decide(name, layout, groups, config, features)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(case=cases)
def test_a_selection_setting_it_does_not_declare_does_not_change_its_decision(name, case):
    layout, config, groups, features = _setup(name, case)
    selection = decide(name, layout, groups, config, features)[1]
    undeclared = [s for s in settings_in("selection") if s != "selector" and s not in SELECTORS.get(name).reads]
    for setting in undeclared:
        changed = config.replace(**{setting: OTHER_VALUE[setting](getattr(config, setting))})
        other = decide(name, layout, groups, changed, features)[1]
        assert torch.equal(other.kept_token_ids, selection.kept_token_ids) and _merged(other) == _merged(selection), (
            f"{setting} changed the decision of {name!r}: add it to {SELECTORS.get(name).__name__}.reads")


def test_every_selection_setting_has_another_value_to_try():
    """A new selection setting needs an entry in OTHER_VALUE, or the declaration test would not cover it."""
    assert set(settings_in("selection")) - {"selector"} == set(OTHER_VALUE)


def _bounded_visits(name: str, config: AdaptTokenConfig, groups: list[GroupEvidence]) -> list[GroupEvidence]:
    """The groups as `Stage.run` leaves them: visited in order, the candidate store cut to the selector's bounds
    after each pass (`collect_evidence(..., bound_store=True)`)."""
    selector = SELECTORS.get(name)(config)
    visited: list[GroupEvidence] = []
    for group in groups:
        visited.append(group)
        _bound_candidates(visited, selector.candidate_bounds(visited))
        if selector.should_stop(visited, len(groups)):
            break
    return visited


@pytest.mark.parametrize("name", [n for n in NAMES if SELECTORS.get(n).needs_group_pass])
@SETTINGS
@given(case=cases)
def test_the_bounded_candidate_store_changes_no_decision(name, case):
    layout, config, groups, features = _setup(name, case)
    expected = decide(name, layout, copy.deepcopy(groups), config, features)[1]
    visited = _bounded_visits(name, config, groups)
    selector = SELECTORS.get(name)(config)
    extra = {"features": features} if selector.needs_features else {}
    bounded = selector.select(layout, visited, **extra)
    assert torch.equal(bounded.kept_token_ids, expected.kept_token_ids)
    assert bounded.group_budgets == expected.group_budgets


BOUNDED = [n for n in NAMES if SELECTORS.get(n).candidate_bounds is not Selector.candidate_bounds]


@pytest.mark.parametrize("name", BOUNDED)
def test_a_bounded_store_does_not_grow_with_the_video(name):
    """Each group may keep ceil(overselect x its largest possible share); the largest possible shares of G groups add
    up to at most budget + 2G (water-filling level x weight, + 2 for rounding; one top-k: budget), so after every
    pass the store holds at most 1.1 B + 3.2 G rows, a few per group, where without the bound each group keeps
    min(its tokens, 1.1 B): 64 rows per group here (tests/test_stage_memory.py counts it on the stage itself)."""
    for num_units in (64, 256, 1024):
        layout = VideoLayout(num_units=num_units, grid_h=4, grid_w=4)
        config = AdaptTokenConfig(selector=name, budget=128, frames_per_group=4, theta=0.0)
        groups = synthetic_evidence(name, layout, 4, config, seed=num_units)
        selector = SELECTORS.get(name)(config)
        visited: list[GroupEvidence] = []
        for group in groups:
            visited.append(group)
            _bound_candidates(visited, selector.candidate_bounds(visited))
            stored = sum(len(g.candidate_ids) for g in visited)
            assert stored <= 1.1 * 128 + 3.2 * len(visited), (num_units, len(visited), stored)
        assert sum(len(g.candidate_ids) for g in synthetic_evidence(name, layout, 4, config, 0)) \
            >= min(len(groups) * 64, len(groups) * math.ceil(1.1 * 128))
