"""Needle data, and a regression check of the whole pipeline on the bundled trained toy model."""

import numpy as np
import pytest

from adapttoken_plugin import AdaptTokenConfig, Pipeline
from adapttoken_plugin.needle import (
    DISTRACTOR_RGB,
    OPTION_RGB,
    OPTIONS,
    VIDEO_FPS,
    iter_frames,
    make_question,
    question_set,
    write_video_file,
)
from adapttoken_plugin.toy import load_needle_model


def test_questions_are_deterministic_and_inside_the_video():
    a, b = make_question(5, 300), make_question(5, 300)
    assert a == b and a != make_question(6, 300)
    for q in question_set(40, (256, 1024)):
        assert 0 <= q.needle_start and q.needle_start + q.needle_length <= q.num_frames
        assert 4 <= q.needle_length <= 8 and q.colour in OPTIONS and q.answer_letter == "ABCD"[OPTIONS.index(q.colour)]
    frames_a = [f for f in iter_frames(make_question(5, 40))]
    frames_b = [f for f in iter_frames(make_question(5, 40))]
    assert all(np.array_equal(x, y) for x, y in zip(frames_a, frames_b))


def _option_pixels(frame, colour, tol=45):
    return int((np.abs(frame.astype(int) - np.asarray(OPTION_RGB[colour])).max(-1) < tol).sum())


def test_only_needle_frames_show_a_large_shape_in_the_answer_colour():
    q = make_question(11, 200, distractor_rate=0.3)
    frames = list(iter_frames(q))
    needle = set(q.needle_frames)
    big = 56 * 56 * 0.15
    for t, frame in enumerate(frames):
        hits = _option_pixels(frame, q.colour)
        assert (hits > big) == (t in needle), (t, hits)
    # the needle-like distractors are there, in colours that are not options
    assert any(min(np.abs(f.astype(int) - np.asarray(c)).max(-1).min() for c in DISTRACTOR_RGB) < 20
               for t, f in enumerate(frames) if t not in needle)


@pytest.fixture(scope="module")
def trained():
    return load_needle_model()


def test_trained_model_is_confident_only_with_the_needle(trained, tmp_path):
    model, processor = trained
    q = make_question(3, 512, needle_length=4)  # 2-3 frame pairs: in 2-3 of the 8 interleaved groups
    video = write_video_file(q, tmp_path / "q.mp4")
    cfg = AdaptTokenConfig(selector="adapttoken", fps=VIDEO_FPS, max_frames=512, frames_per_group=64, budget=64)
    trace = Pipeline(model, processor, cfg).answer(video, q.question, q.options).trace
    needle_groups = {g.group_id for g in trace.groups if set(g.frames) & set(q.needle_frames)}
    with_needle = [g.entropy for g in trace.groups if g.group_id in needle_groups]
    without = [g.entropy for g in trace.groups if g.group_id not in needle_groups]
    assert 2 <= len(with_needle) <= 3 and len(without) >= 5
    assert max(with_needle) < 0.3 and min(without) > 1.2  # near 0 with the needle, near ln 4 without


def test_adapttoken_beats_uniform_on_a_fixed_subset(trained, tmp_path):
    """A regression check of the whole pipeline (positions, scores, allocation, final pass): 12 questions,
    3 per answer letter (so a model's default guess is worth 3), budget 1/32 of the visual tokens."""
    model, processor = trained
    pool = question_set(60, (256,), seed=123)
    questions = [q for letter in "ABCD" for q in [q for q in pool if q.answer_letter == letter][:3]]
    correct = {"adapttoken": 0, "uniform": 0}
    for q in questions:
        video = write_video_file(q, tmp_path / f"q{q.seed}.mp4")
        for name in correct:
            cfg = AdaptTokenConfig(selector=name, fps=VIDEO_FPS, max_frames=256, frames_per_group=64, budget=16)
            answer = Pipeline(model, processor, cfg).answer(video, q.question, q.options)
            correct[name] += answer.letter == q.answer_letter
    assert correct["adapttoken"] >= 10 and correct["adapttoken"] >= correct["uniform"] + 4, correct


def _frames_in(path) -> int:
    from adapttoken_plugin.video import FrameReader

    with FrameReader(path, backend="pyav") as reader:
        return reader.info.num_frames


def test_a_video_left_short_or_unindexed_is_written_again(tmp_path):
    """Videos written before writes were atomic: a Ctrl-C left a valid but short mp4, a SIGKILL one without its
    index; both were reused as complete (answers from a fraction of the frames, labelled with the full length)."""
    from adapttoken_plugin.video import write_video

    q = make_question(5, 48)
    short = tmp_path / "short.mp4"
    write_video(short, (f for i, f in zip(range(10), iter_frames(q))), fps=VIDEO_FPS)
    unindexed = tmp_path / "unindexed.mp4"
    write_video(unindexed, iter_frames(q), fps=VIDEO_FPS)
    unindexed.write_bytes(unindexed.read_bytes()[: unindexed.stat().st_size // 2])
    for path in (short, unindexed):
        written: list[tuple[int, int]] = []
        assert write_video_file(q, path, on_frame=lambda done, total, seen=written: seen.append((done, total))) == path
        assert _frames_in(path) == 48 and written[-1] == (48, 48)


def test_a_complete_video_is_reused_and_another_questions_is_not(tmp_path):
    q, other = make_question(5, 48), make_question(6, 48)
    path = write_video_file(q, tmp_path / "q.mp4")
    written = []
    write_video_file(q, path, on_frame=lambda done, total: written.append(done))
    assert written == []  # reused: the record beside it matches the question and the file
    write_video_file(other, path, on_frame=lambda done, total: written.append(done))
    assert written[-1] == 48 and json_of(path)["video"]["question"]["seed"] == 6
    with open(path, "r+b") as f:  # the file changed after it was recorded
        f.seek(100)
        f.write(b"\0" * 16)
    write_video_file(other, path, on_frame=lambda done, total: written.append(done))
    assert len(written) == 96


def json_of(path):
    import json

    return json.loads(path.with_name(path.name + ".json").read_text())


def test_the_demo_video_left_short_by_an_interruption_is_written_again(tmp_path):
    """`adapttoken demo --out D` after a Ctrl-C answered from the 98 frames written and still printed the
    needle's position in the 1,024-frame video."""
    from adapttoken_plugin.demo import DEMO_FRAMES, demo_question, write_demo_video
    from adapttoken_plugin.video import write_video

    path = tmp_path / "needle.mp4"
    write_video(path, (f for i, f in zip(range(98), iter_frames(demo_question()))), fps=VIDEO_FPS)
    assert write_demo_video(path) == path and _frames_in(path) == DEMO_FRAMES == 1024
