"""What the selector stage holds while it visits groups does not grow with the video: counts, never RSS.

The stage runs on the toy model with frames made in memory (112 x 112 px: 16 visual tokens per frame pair, 2 pairs
per group). The candidate store's size is what the stage counts (`trace.candidate_store_peak_bytes`); the bound it
must stay under follows from the allocation alone: a group's share can only shrink as groups arrive, and each
group may keep ceil(overselect x its largest possible share), where the largest possible shares of k groups add up
to at most budget + 2k (`allocation_upper_bounds`: the water-filling level times each weight, plus 2 for its
rounding; flexselect's bounds are the groups' shares of one top-k, budget in all); so the store never holds
more than overselect x budget + 3.2k rows (k groups visited), where an unbounded store holds min(tokens of a group,
ceil(overselect x budget)) rows for each group.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import adapttoken_plugin as at
import adapttoken_plugin.stage as stage_module
from adapttoken_plugin.pipeline import Pipeline, format_question
from adapttoken_plugin.stage import Query
from adapttoken_plugin.toy import toy_model, toy_processor

SIDE = 112
BUDGET = 16  # ceil(1.1 x 16) = 18 of each group's 32 tokens
OPTIONS = ["red", "green", "blue", "yellow"]


@pytest.fixture(scope="module")
def toy():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the toy model runs faster on one thread when the machine's few cores are busy
    torch.manual_seed(0)
    yield toy_model(), toy_processor(min_pixels=SIDE * SIDE, max_pixels=SIDE * SIDE)
    torch.set_num_threads(before)


def _evidence_and_result(toy, selector: str, num_frames: int, bound_store: bool = True, **settings):
    """The stage's evidence and result for a video of `num_frames` random frames (the same frames for a unit in
    every video), 4 frames per group."""
    model, processor = toy
    config = at.AdaptTokenConfig(selector=selector, budget=BUDGET, frames_per_group=4, **settings)
    pipe = Pipeline(model, processor, config)
    layout = pipe.adapter.layout_for_frames(num_frames, SIDE, SIDE, 1.0, tuple(range(num_frames)))

    def pixels_for(units: torch.Tensor) -> dict:
        frames = np.stack([np.random.default_rng(int(u)).integers(0, 255, (2, SIDE, SIDE, 3), dtype=np.uint8)
                           for u in units.tolist()]).reshape(-1, SIDE, SIDE, 3)
        return pipe.adapter.frames_to_pixels(processor, frames)

    query = Query(pipe.prompt_parts(format_question("What colour?", OPTIONS)), layout, pixels_for)
    evidence = pipe.stage.collect_evidence(query, bound_store=bound_store)
    return evidence, pipe.stage.finish(query, evidence)


@pytest.mark.parametrize("selector,settings", [("adapttoken", {}), ("adapttoken-lite", {"theta": 0.0}),
                                               ("attention-topk", {}), ("flexselect", {})])
def test_the_candidate_store_peak_does_not_grow_with_the_video(toy, selector, settings):
    """From 4 to 16 groups at a fixed budget the store's peak stays within overselect x budget + 3.2 rows per group
    (an unbounded store would hold 18 rows for each group: 72 and 288); it held at least the first group's
    ceil(1.1 x 16) candidates (attention-topk and flexselect, which keep no extra: the budget), and at least what is
    left at the end."""
    row_bytes = 8 + toy[0].config.text_config.hidden_size * 4  # an int64 id and a float32 feature row
    peaks = []
    for frames in (16, 64):  # 4 and 16 groups of 2 frame pairs
        evidence, result = _evidence_and_result(toy, selector, frames, **settings)
        groups = len(evidence.groups)
        assert len(evidence.visited) == groups == frames // 4  # Lite with theta 0 visits every group
        peak = result.trace.candidate_store_peak_bytes
        first = math.ceil(1.1 * BUDGET) if selector.startswith("adapttoken") else BUDGET
        assert first * row_bytes <= peak <= (1.1 * BUDGET + 3.2 * groups) * row_bytes, (frames, peak / row_bytes)
        held = sum(len(g.candidate_ids) for g in evidence.visited)
        assert held * row_bytes <= peak
        assert held < groups * math.ceil(1.1 * BUDGET) / 2  # at 16 groups: far below the unbounded store
        peaks.append(peak)
    assert peaks[1] <= peaks[0] + 3.2 * 12 * row_bytes  # 12 groups more: a few rows each, not 18


def test_the_unbounded_store_grows_with_the_video_and_the_count_shows_it(toy):
    """What the ablation keeps (evidence for every budget): ceil(1.1 x 16) rows per group, 16 groups."""
    evidence, result = _evidence_and_result(toy, "adapttoken", 64, bound_store=False)
    row_bytes = 8 + toy[0].config.text_config.hidden_size * 4
    assert result.trace.candidate_store_peak_bytes == 16 * math.ceil(1.1 * BUDGET) * row_bytes


def test_freed_heap_memory_is_handed_back_after_every_group_pass(toy, monkeypatch):
    """Without it glibc keeps what each pass freed and resident memory grows with the number of groups
    (docs/benchmarks.md, "What grew with the video")."""
    calls = []
    monkeypatch.setattr(stage_module, "release_free_heap", lambda: calls.append(1) or True)
    evidence, _ = _evidence_and_result(toy, "adapttoken", 16)
    assert len(calls) == len(evidence.visited) == 4
