"""Every strategy spends the budget it is given, and `random` draws per question (the fair-baselines issue).

Each test here failed before the fix it covers: `random` drew the same subset for every video of a length,
`uniform` and a stopped-early `adapttoken-lite` kept fewer tokens than the budget, and `attention-topk` gave
the tokens left after the equal floor to the lowest group ids.
"""

from __future__ import annotations

import torch

from adapttoken_plugin import SELECTORS, AdaptTokenConfig
from adapttoken_plugin.layout import GroupEvidence, VideoLayout, interleaved_groups
from adapttoken_plugin.pipeline import Pipeline, format_question
from adapttoken_plugin.stage import Query, keep_candidates, replay_visits
from adapttoken_plugin.toy import toy_model, toy_processor

LAYOUT = VideoLayout(num_units=16, grid_h=2, grid_w=3)  # 6 tokens per unit, 96 in all


def groups_with(entropies: list[float], scores_of=None, budget: int = 96) -> list[GroupEvidence]:
    groups = []
    gen = torch.Generator().manual_seed(0)
    for g, units in enumerate(interleaved_groups(LAYOUT.num_units, LAYOUT.num_units // len(entropies))):
        group = GroupEvidence(g, units, LAYOUT.token_ids_of_units(units), entropy=entropies[g])
        scores = torch.rand(group.num_tokens, generator=gen) if scores_of is None else scores_of(g, group)
        keep_candidates(group, scores, torch.randn(group.num_tokens, 4, generator=gen), budget, "cpu")
        groups.append(group)
    return groups


def test_random_draws_per_question_and_video_reproducibly():
    stage = Pipeline(toy_model(), toy_processor(), AdaptTokenConfig(selector="random", budget=20, seed=0)).stage
    prompt = Pipeline(toy_model(), toy_processor()).prompt_parts(format_question("Which colour?", ["a", "b"]))
    other_prompt = Pipeline(toy_model(), toy_processor()).prompt_parts(format_question("Which shape?", ["a", "b"]))
    groups = [GroupEvidence(0, torch.arange(16), LAYOUT.token_ids_of_units(torch.arange(16)))]

    def kept(prompt, key):
        return stage.selector_for(Query(prompt, LAYOUT, None, None, key)).select(LAYOUT, groups).kept_token_ids

    first = kept(prompt, "video-1")
    assert torch.equal(first, kept(prompt, "video-1"))  # reproducible
    assert not torch.equal(first, kept(prompt, "video-2"))  # another video of the same length
    assert not torch.equal(first, kept(other_prompt, "video-1"))  # another question
    assert len(first) == 20 and bool((first[1:] > first[:-1]).all())
    assert stage.config.seed == 0  # the user's setting is unchanged; the draw mixes it with the question


def test_random_through_the_pipeline_differs_between_two_videos_of_one_length(tmp_path):
    import numpy as np

    from adapttoken_plugin.video import write_video

    rng = np.random.default_rng(0)
    paths = []
    for name in ("a.mp4", "b.mp4"):
        paths.append(tmp_path / name)
        write_video(paths[-1], (rng.integers(0, 255, (56, 56, 3), dtype=np.uint8) for _ in range(16)), fps=4.0)
    pipe = Pipeline(toy_model(), toy_processor(min_pixels=56 * 56, max_pixels=56 * 56),
                    AdaptTokenConfig(selector="random", budget=5, fps=4.0, max_frames=16))
    kept = [pipe.answer(p, "Which colour?", ["red", "blue"], max_new_tokens=1).trace.kept_token_ids for p in paths]
    again = pipe.answer(paths[0], "Which colour?", ["red", "blue"], max_new_tokens=1).trace.kept_token_ids
    assert len(kept[0]) == len(kept[1]) == 5 and kept[0] != kept[1] and again == kept[0]


def test_uniform_tops_up_after_the_last_whole_unit():
    groups = groups_with([1.0] * 4)
    selection = SELECTORS.get("uniform")(AdaptTokenConfig(selector="uniform", budget=26)).select(LAYOUT, groups)
    kept = selection.kept_token_ids
    assert len(kept) == 26
    whole = [u for u in range(16) if int((LAYOUT.unit_of(kept) == u).sum()) == 6]
    assert whole == [2, 6, 10, 14]  # four evenly spaced whole units, then two more tokens elsewhere
    assert sum(selection.group_budgets) == 26


def test_lite_stopped_early_tops_up_from_the_groups_it_skipped():
    groups = groups_with([0.05, 1.3, 1.3, 1.3])  # group 0 is confident: Lite stops after it (24 tokens)
    config = AdaptTokenConfig(selector="adapttoken-lite", budget=40, theta=0.2)
    lite = SELECTORS.get("adapttoken-lite")(config)
    visited = replay_visits(lite, groups)
    assert [g.group_id for g in visited] == [0]
    selection = lite.select(LAYOUT, visited)
    kept = selection.kept_token_ids
    assert len(kept) == 40 and selection.group_budgets == [24]
    assert bool(torch.isin(groups[0].token_ids, kept).all())  # all of the visited group
    others = kept[~torch.isin(kept, groups[0].token_ids)]
    assert len(torch.unique(LAYOUT.unit_of(others))) == 12  # the 16 others spread over the 12 skipped units


def test_attention_topk_gives_leftover_tokens_to_the_best_scored_groups():
    best = {10, 11, 12, 13}  # 16 groups of one unit; these hold the highest scores

    def scores(g, group):
        return torch.full((group.num_tokens,), 0.9 if g in best else 0.1) + 0.01 * torch.arange(group.num_tokens)

    groups = groups_with([1.0] * 16, scores)
    config = AdaptTokenConfig(selector="attention-topk", budget=4)
    selection = SELECTORS.get("attention-topk")(config).select(LAYOUT, groups)
    assert set(LAYOUT.unit_of(selection.kept_token_ids).tolist()) == best
    assert selection.group_budgets == [1 if g in best else 0 for g in range(16)]


def test_every_built_in_selector_but_full_keeps_exactly_the_budget():
    assert [n for n in SELECTORS.names() if not SELECTORS.get(n).exact_budget
            and SELECTORS.origin(n).startswith("adapttoken_plugin.")] == ["full"]
