"""Benchmark tasks (issue 13): generator invariants, checked on the pixels of every task's videos."""

import numpy as np
import pytest

from adapttoken_plugin.bench_tasks import TASKS, iter_frames, make_task_question, task_question_set, write_video_file
from adapttoken_plugin.bench_tasks.base import FRAME_SIDE
from adapttoken_plugin.needle import OPTION_RGB, OPTIONS

# "answer-bearing": at least this share of a frame's pixels in one option colour (the smallest evidence,
# the detail task's small shape, covers 2% or more; backgrounds stay under 0.1%)
BEARING = 0.015


def colour_share(frame: np.ndarray, colour: str, tol: int = 45) -> float:
    return float((np.abs(frame.astype(int) - np.asarray(OPTION_RGB[colour])).max(-1) < tol).mean())


@pytest.mark.parametrize("task", sorted(TASKS))
def test_questions_are_deterministic_by_seed(task):
    a, b = make_task_question(task, 5, 300), make_task_question(task, 5, 300)
    assert a == b
    assert any(make_task_question(task, s, 300) != a for s in range(6, 10))
    fa, fb = list(iter_frames(a, frames=a.evidence_frames)), list(iter_frames(b, frames=b.evidence_frames))
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb))


@pytest.mark.parametrize("task", sorted(TASKS))
def test_four_options_and_evidence_inside_the_video(task):
    for q in task_question_set(30, (64, 256, 1024), tasks=(task,)):
        assert len(q.options) == 4 and 0 <= q.answer_index < 4 and q.answer_letter == "ABCD"[q.answer_index]
        assert q.evidence_frames and 0 <= q.evidence_frames[0] and q.evidence_frames[-1] < q.num_frames


@pytest.mark.parametrize("task", sorted(TASKS))
def test_only_evidence_frames_show_an_option_colour(task):
    q = make_task_question(task, 11, 240)
    evidence = set(q.evidence_frames)
    with_ev = list(iter_frames(q))
    without = list(iter_frames(q, shown=set()))
    for t, (f, g) in enumerate(zip(with_ev, without)):
        bearing = max(colour_share(f, c) for c in OPTIONS) >= BEARING
        assert bearing == (t in evidence), (t, task)
        # the minimal pair: the same frame but for the evidence
        assert np.array_equal(f, g) == (t not in evidence), t
        assert max(colour_share(g, c) for c in OPTIONS) < BEARING


def test_needle_and_distractor_evidence_shows_the_answer_colour():
    for task in ("needle", "distractor"):
        for q in task_question_set(8, (128,), tasks=(task,)):
            for f in iter_frames(q, frames=q.evidence_frames):
                assert colour_share(f, q.options[q.answer_index]) >= BEARING


def test_order_first_event_has_the_answer_colour():
    for q in task_question_set(12, (128, 512), tasks=("order",)):
        first, second = sorted(q.evidence_events, key=lambda e: e.frames[0])
        assert first.frames[-1] + 4 <= second.frames[0]  # never in the same frame pair
        assert first.rgb == OPTION_RGB[q.options[q.answer_index]] != second.rgb
        f = next(iter_frames(q, frames=[first.frames[0]]))
        assert colour_share(f, q.options[q.answer_index]) >= BEARING


def test_count_flashes_are_separate_frame_pairs_of_equal_token_aligned_squares():
    seen = set()
    for q in task_question_set(24, (128, 512), tasks=("count",)):
        flashes = q.evidence_events
        assert len(flashes) == q.answer_index + 1 and q.options == ("1", "2", "3", "4")
        seen.add(len(flashes))
        for e in flashes:
            assert len(e.frames) == 2 and e.frames[0] % 2 == 0
        starts = [e.frames[0] for e in flashes]
        assert all(b - a >= 6 for a, b in zip(starts, starts[1:]))
        assert len({e.rgb for e in flashes}) == 1

        plain = iter_frames(q, shown=set(), frames=q.evidence_frames)
        for f, g in zip(iter_frames(q, frames=q.evidence_frames), plain):
            mask = (f != g).any(-1)  # what the flash drew: the minimal pair differs only there
            rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
            # exactly 2 x 2 tokens of 28 px, starting on a token boundary, all of it drawn
            assert rows[0] % 28 == 0 and cols[0] % 28 == 0
            assert rows[-1] - rows[0] + 1 == 56 and cols[-1] - cols[0] + 1 == 56
            assert mask.sum() >= 0.99 * 56 * 56
    assert seen == {1, 2, 3, 4}


def test_detail_shape_is_small_and_inside_one_token():
    for q in task_question_set(20, (128,), tasks=("detail",)):
        colour = q.options[q.answer_index]
        plain = iter_frames(q, shown=set(), frames=q.evidence_frames)
        for f, g in zip(iter_frames(q, frames=q.evidence_frames), plain):
            mask = (f != g).any(-1)
            assert colour_share(f, colour) >= BEARING
            rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
            assert rows[0] // 28 == rows[-1] // 28 and cols[0] // 28 == cols[-1] // 28  # one token cell
            assert BEARING <= mask.mean() <= 0.05


def test_salient_order_has_one_long_large_event_and_one_brief_small_one():
    for q in task_question_set(12, (128, 1024), tasks=("salient-order",)):
        first, second = q.evidence_events  # in time order
        assert first.frames[-1] + 4 <= second.frames[0]
        assert first.rgb == OPTION_RGB[q.options[q.answer_index]] != second.rgb
        long, short = sorted((first, second), key=lambda e: -len(e.frames))
        assert len(long.frames) >= 0.08 * q.num_frames - 1 and long.radius >= 0.25
        assert len(short.frames) <= 6 and short.radius * FRAME_SIDE <= 12.5
        f = next(iter_frames(q, frames=[short.frames[0]]))
        g = next(iter_frames(q, shown=set(), frames=[short.frames[0]]))
        rows, cols = (np.nonzero(a)[0] for a in ((f != g).any(-1).any(1), (f != g).any(-1).any(0)))
        assert rows[0] // 28 == rows[-1] // 28 and cols[0] // 28 == cols[-1] // 28  # inside one token


def test_distractor_decoys_are_everywhere_and_move():
    q = make_task_question("distractor", 3, 1024)
    decoys = [e for e in q.events if not e.evidence]
    starts = np.array([e.frames[0] for e in decoys])
    assert np.diff(np.concatenate([[0], starts, [q.num_frames]])).max() <= 24
    assert all(e.velocity[1] > 0 and e.radius > q.evidence_events[0].radius for e in decoys)


def test_video_file_round_trip(tmp_path):
    from adapttoken_plugin.video import FrameReader

    q = make_task_question("order", 2, 24)
    path = write_video_file(q, tmp_path / "q.mp4")
    with FrameReader(path) as reader:
        assert reader.info.num_frames == 24 and (reader.info.height, reader.info.width) == (FRAME_SIDE, FRAME_SIDE)


def test_tasks_model_loader_says_how_to_make_a_missing_model(tmp_path):
    from adapttoken_plugin.errors import AdaptTokenError
    from adapttoken_plugin.toy import load_tasks_model

    with pytest.raises(AdaptTokenError, match="train_tasks_model.py"):
        load_tasks_model(tmp_path / "none")
