"""The streaming pipeline on real video files (written with PyAV) and the toy model."""

import numpy as np
import pytest
import torch

import adapttoken_plugin as at
from adapttoken_plugin.pipeline import Pipeline, format_question, parse_letter
from adapttoken_plugin.toy import toy_model, toy_processor
from adapttoken_plugin.video import FrameReader, sample_frame_indices, write_video

OPTIONS = ["red", "green", "blue", "yellow"]


@pytest.fixture(scope="module")
def toy():
    return toy_model(), toy_processor(min_pixels=56 * 56, max_pixels=56 * 84)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    rng = np.random.default_rng(0)
    write_video(path, (rng.integers(0, 255, (60, 90, 3), dtype=np.uint8) for _ in range(48)), fps=8.0)
    return path


def _cfg(**kw):
    base = dict(fps=4.0, max_frames=64, frames_per_group=4, budget=10**6, position_rule="transformers")
    return at.AdaptTokenConfig(**{**base, **kw})


def test_streaming_full_budget_equals_the_unmodified_model_on_the_whole_clip(toy, video):
    model, processor = toy
    pipe = Pipeline(model, processor, _cfg(selector="adapttoken"))
    ans = pipe.answer(video, "What colour?", OPTIONS, max_new_tokens=6)

    # the same frames, decoded at the same size, through the processor in one piece
    with FrameReader(video) as probe:
        info = probe.info
    indices = sample_frame_indices(info, 4.0, 64, multiple_of=2)
    height, width = pipe.adapter.frame_size(processor, info.height, info.width, None, len(indices))
    with FrameReader(video, size=(height, width)) as reader:
        frames = reader.read(indices.tolist())
    messages = [{"role": "user", "content": [{"type": "video"},
                                             {"type": "text", "text": format_question("What colour?", OPTIONS)}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], videos=[frames], return_tensors="pt", do_sample_frames=False, do_resize=False,
                       cap_pixels_per_frame=False, fps=len(indices) / info.duration)
    ref = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    ref_text = processor.tokenizer.decode(ref[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    assert ans.text == ref_text
    assert ans.trace.kept_tokens == ans.trace.total_tokens == int((inputs["input_ids"] == model.config.video_token_id)
                                                                  .sum())
    assert ans.trace.num_frames == len(indices) == 24


def test_streaming_selection_sizes_and_trace(toy, video, tmp_path):
    model, processor = toy
    ans = Pipeline(model, processor, _cfg(budget=30)).answer(video, "What colour?", OPTIONS)
    t = ans.trace
    assert t.kept_tokens == 30 and len(t.kept_token_ids) == 30 and t.groups_visited == len(t.groups) == 6
    assert sorted(f for g in t.groups for f in g.frames) == sample_frame_indices(
        FrameReader(video).info, 4.0, 64, multiple_of=2).tolist()
    assert all(g.entropy is not None and g.budget is not None for g in t.groups)
    assert sum(g.budget for g in t.groups) == 30
    assert set(t.seconds) >= {"decode", "vision", "prefill", "scoring", "allocation", "final"}
    assert all(v >= 0 for v in t.seconds.values()) and t.seconds["prefill"] > 0
    t.save(tmp_path / "trace.json")
    import json

    assert json.loads((tmp_path / "trace.json").read_text())["kept_tokens"] == 30


def test_lite_with_high_theta_visits_one_group(toy, video):
    model, processor = toy
    ans = Pipeline(model, processor, _cfg(selector="adapttoken-lite", theta=100.0, budget=30)).answer(
        video, "What colour?", OPTIONS)
    assert ans.trace.groups_visited == 1
    assert ans.trace.groups[0].num_tokens < 30  # one group holds less than the budget:
    assert ans.trace.kept_tokens == min(30, ans.trace.total_tokens)  # topped up from the groups not visited
    assert sum(g.kept for g in ans.trace.groups[1:]) == 30 - ans.trace.groups[0].kept


def test_bad_videos_and_options(toy, tmp_path, video):
    model, processor = toy
    pipe = Pipeline(model, processor, _cfg(budget=30))
    with pytest.raises(at.VideoReadError):
        pipe.answer(tmp_path / "missing.mp4", "q?", OPTIONS)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_text("not a video")
    with pytest.raises(at.VideoReadError):
        pipe.answer(garbage, "q?", OPTIONS)
    with pytest.raises(at.EmptyVideoError):
        Pipeline(model, processor, _cfg(fps=0.001, max_frames=64)).answer(video, "q?", OPTIONS)
    with pytest.raises(at.OptionsRequiredError):
        Pipeline(model, processor, _cfg(entropy_mode="options")).answer(video, "q?", options=None)


def test_options_entropy_is_bounded_by_log_of_the_option_count(toy, video):
    model, processor = toy
    ans = Pipeline(model, processor, _cfg(entropy_mode="options", budget=30)).answer(video, "q?", OPTIONS[:3])
    assert all(0 <= g.entropy <= np.log(3) + 1e-6 for g in ans.trace.groups)


def test_generated_entropy_mode_runs_group_generation(toy, video):
    model, processor = toy
    ans = Pipeline(model, processor, _cfg(entropy_mode="generated", entropy_max_new_tokens=3, budget=30)).answer(
        video, "Describe.")
    assert ans.letter is None and ans.trace.kept_tokens == 30
    assert all(g.entropy >= 0 for g in ans.trace.groups)


def test_question_format_and_letter_parsing():
    prompt = format_question("Which?", ["x", "y"])
    assert prompt.splitlines() == ["Which?", "A. x", "B. y", "Answer with the option's letter from the given "
                                   "choices directly."]
    assert parse_letter("B", 4) == "B" and parse_letter("(C) bread", 4) == "C" and parse_letter("The answer", 4) \
        is None and parse_letter("E", 4) is None and parse_letter("A. tomato", 2) == "A"


def test_unsupported_model_is_refused():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    text_only = Qwen2ForCausalLM(Qwen2Config(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, num_key_value_heads=1))
    with pytest.raises(at.UnsupportedModelError):
        Pipeline(text_only, toy_processor())
    assert torch.is_tensor(text_only.lm_head.weight)


def test_frame_cache_modes_give_identical_selections(toy, video):
    model, processor = toy
    results = {}
    for mode in ("memory", "disk", "off"):
        ans = Pipeline(model, processor, _cfg(budget=30, frame_cache=mode)).answer(video, "What colour?", OPTIONS)
        results[mode] = (ans.trace.kept_token_ids, [g.entropy for g in ans.trace.groups], ans.text)
        assert ans.trace.frame_cache == mode
    assert results["memory"] == results["disk"] == results["off"]


def test_auto_frame_cache_spills_to_disk_above_the_budget(toy, video):
    model, processor = toy
    assert Pipeline(model, processor, _cfg(budget=30)).answer(video, "q?", OPTIONS).trace.frame_cache == "memory"
    small = _cfg(budget=30, video_cache_mib=0)  # 24 frames of 56 x 84 x 3 bytes do not fit in 0 MiB
    assert Pipeline(model, processor, small).answer(video, "q?", OPTIONS).trace.frame_cache == "disk"


class FrameReads:
    """Counts frames read through FrameReader.read (every decode of a sampled frame goes through it)."""

    def __init__(self, monkeypatch):
        self.frames = 0
        read = FrameReader.read

        def counting_read(reader, indices):
            self.frames += len(indices)
            return read(reader, indices)

        monkeypatch.setattr(FrameReader, "read", counting_read)


def test_plan_video_decodes_no_frame_and_plans_what_decode_reads(toy, video, monkeypatch):
    model, processor = toy
    pipe = Pipeline(model, processor, _cfg(budget=30, frame_cache="memory", decode_ahead=False))
    reads = FrameReads(monkeypatch)
    plan = pipe.plan_video(video)
    assert reads.frames == 0
    # what the plan says, computed here independently of plan_video
    with FrameReader(video) as probe:
        info = probe.info
    indices = sample_frame_indices(info, 4.0, 64, multiple_of=2)
    assert plan.info == info and (plan.video_fps, plan.sampled_fps) == (8.0, 4.0)
    assert plan.indices.tolist() == indices.tolist() == list(plan.layout.frame_indices) == list(range(0, 48, 2))
    assert plan.frame_size == pipe.adapter.frame_size(processor, 60, 90, None, len(indices))
    with pytest.raises(ValueError):
        plan.indices[0] = 5  # shared by the plan's sessions: read-only
    with pipe.decode(plan) as session:
        assert reads.frames == 0  # nothing decoded before it is asked for (decode_ahead=False)
        assert session.plan is plan and session.frame_cache == "memory"
        assert session.setup_seconds == plan.seconds + session.decode_seconds
        pixels = session.pixels_for(torch.tensor([0, 5]))
        # adapttoken visits every group: one time-ordered pass reads every sampled frame, cheaper than these alone
        assert reads.frames == session.frames_decoded == len(indices)
    with pipe.open_video(video) as opened:  # the same video again: planned and decoded before
        assert (opened.layout, opened.frame_size, opened.video_fps) == (plan.layout, plan.frame_size, 8.0)
        assert opened.plan.indices.tolist() == plan.indices.tolist()
        again = opened.pixels_for(torch.tensor([0, 5]))
        assert reads.frames == len(indices) and opened.frames_decoded == 0  # frames from the cache
    assert all(torch.equal(pixels[k], again[k]) for k in pixels)


@pytest.mark.parametrize("name", ["qwen3_vl", "internvl"])
def test_per_frame_prompt_text_from_the_plan_equals_the_one_from_the_decoded_video(name, tmp_path, monkeypatch):
    """Qwen3-VL timestamps and InternVL frame labels need the layout and frame rate, not pixels."""
    from fixtures.families import FAMILIES

    family = FAMILIES[name]
    model, processor = family.model(), family.build_processor()
    path = tmp_path / "clip.mp4"
    write_video(path, family.video(seed=2).repeat(2, axis=0), fps=4.0)
    pipe = Pipeline(model, processor, at.AdaptTokenConfig(fps=2.0, max_frames=16, frames_per_group=4))
    assert pipe.prompt_needs_video
    with pytest.raises(at.UnsupportedInputError, match="plan_video"):
        pipe.prompt_parts("Which colour?")
    reads = FrameReads(monkeypatch)
    planned = pipe.prompt_parts("Which colour?", pipe.plan_video(path))
    assert reads.frames == 0
    with pipe.open_video(path) as session:
        decoded = pipe.prompt_parts("Which colour?", session)
    assert reads.frames > 0
    assert planned.unit_heads is not None and len(planned.unit_heads) == session.layout.num_units
    for field in ("prefix_ids", "suffix_ids"):
        assert torch.equal(getattr(planned, field), getattr(decoded, field))
    for field in ("unit_heads", "unit_tails"):
        assert [t.tolist() for t in getattr(planned, field)] == [t.tolist() for t in getattr(decoded, field)]


def _backends():
    from adapttoken_plugin.video._common import decord_available
    from adapttoken_plugin.video.torchcodec_backend import torchcodec_status

    return [pytest.param("torchcodec", marks=pytest.mark.skipif(torchcodec_status() is not None,
                                                                reason=str(torchcodec_status()))),
            pytest.param("decord", marks=pytest.mark.skipif(not decord_available(), reason="decord does not import"))]


@pytest.mark.parametrize("other", _backends())
def test_backends_that_decode_the_same_frames_give_the_same_answer_and_the_trace_names_them(toy, tmp_path, other):
    """At the model's own frame size no backend resizes, and their frames are identical (tests/test_video.py);
    resized frames differ between torchcodec (anti-aliased) and PyAV / decord (docs/benchmarks.md)."""
    import importlib.metadata

    model, processor = toy
    path = tmp_path / "native.mp4"
    rng = np.random.default_rng(3)
    write_video(path, (rng.integers(0, 255, (56, 84, 3), dtype=np.uint8) for _ in range(32)), fps=8.0)
    answers = {}
    for backend in ("pyav", other):
        pipe = Pipeline(model, processor, _cfg(budget=30), backend=backend)
        plan = pipe.plan_video(path)
        assert plan.frame_size == (56, 84)  # decoded at the native size
        answers[backend] = ans = pipe.answer(path, "What colour?", OPTIONS)
        t = ans.trace
        assert (t.video_backend, t.video_decode_device) == (backend, "cpu")
        assert t.video_backend_version == importlib.metadata.version({"pyav": "av"}.get(backend, backend))
        assert t.frame_indices == plan.indices.tolist() == list(range(0, 32, 2))
        assert t.to_dict()["video_backend"] == backend  # saved with the trace
    a, b = answers["pyav"].trace, answers[other].trace
    assert (a.kept_token_ids, [g.entropy for g in a.groups], answers["pyav"].text) == \
        (b.kept_token_ids, [g.entropy for g in b.groups], answers[other].text)


def test_unknown_backend_is_refused(toy):
    with pytest.raises(at.ConfigError, match="backend"):
        Pipeline(*toy, _cfg(), backend="opencv")


class RecordedReads:
    """Records the file frame indices of every FrameReader.read (all decoding goes through it)."""

    def __init__(self, monkeypatch):
        self.indices: list[int] = []
        read = FrameReader.read

        def recording_read(reader, indices):
            self.indices += list(np.asarray(indices).tolist())
            return read(reader, indices)

        monkeypatch.setattr(FrameReader, "read", recording_read)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    rng = np.random.default_rng(1)
    write_video(path, (rng.integers(0, 255, (56, 84, 3), dtype=np.uint8) for _ in range(200)), fps=8.0)
    return path


def _outcome(ans):
    return ans.trace.kept_token_ids, [g.entropy for g in ans.trace.groups], ans.text


@pytest.mark.parametrize("frame_cache", ["memory", "disk"])
def test_a_second_question_on_the_same_video_decodes_nothing_and_encodes_nothing(toy, video, monkeypatch,
                                                                                   frame_cache):
    model, processor = toy
    pipe = Pipeline(model, processor, _cfg(budget=30, frame_cache=frame_cache))
    reads = RecordedReads(monkeypatch)
    first = pipe.answer(video, "What colour?", OPTIONS)
    assert first.trace.frames_decoded == len(reads.indices) == 24 and first.trace.encoder_calls == 6  # 6 groups
    second = pipe.answer(video, "Which colour was it?", OPTIONS)
    assert second.trace.frames_decoded == 0 and second.trace.encoder_calls == 0 and len(reads.indices) == 24
    assert second.trace.frame_cache == frame_cache and second.trace.video_backend == first.trace.video_backend
    # what the cache served is what a fresh pipeline computes
    fresh = Pipeline(model, processor, _cfg(budget=30, frame_cache="off")).answer(video, "Which colour was it?",
                                                                                   OPTIONS)
    assert _outcome(second) == _outcome(fresh)


def test_another_video_or_another_frame_size_is_not_served_from_the_cache(toy, video, long_video, monkeypatch):
    model, processor = toy
    pipe = Pipeline(model, processor, _cfg(budget=30))
    pipe.answer(video, "What colour?", OPTIONS)
    reads = RecordedReads(monkeypatch)
    assert pipe.answer(long_video, "What colour?", OPTIONS).trace.frames_decoded == len(reads.indices) > 0
    smaller = Pipeline(model, processor, _cfg(budget=30, max_pixels=56 * 56))
    smaller.cache, smaller.adapter = pipe.cache, type(pipe.adapter)(smaller.adapter.wrapped, pipe.cache)
    assert smaller.answer(video, "What colour?", OPTIONS).trace.frames_decoded == 24  # other size: other frames


@pytest.mark.parametrize("min_groups", [1, 3])
def test_lite_decodes_no_frame_of_unvisited_groups_beyond_the_next_batch(toy, long_video, monkeypatch, min_groups):
    """Lite stops at its first group with entropy <= theta (100: the first it may stop at). The background
    decoder reads batches of 1, 1, 2, 4, ... groups, each only once a group of the previous batch is asked for:
    besides the groups visited and the batch after, only frames of units the final pass keeps are decoded."""
    from adapttoken_plugin.layout import interleaved_groups

    model, processor = toy
    cfg = _cfg(selector="adapttoken-lite", theta=100.0, min_groups=min_groups, budget=12)  # one group's tokens
    pipe = Pipeline(model, processor, cfg)
    reads = RecordedReads(monkeypatch)
    ans = pipe.answer(long_video, "What colour?", OPTIONS)
    plan = pipe.plan_video(long_video)
    groups = interleaved_groups(plan.layout.num_units, pipe.stage.units_per_group)
    assert ans.trace.groups_visited == min_groups and len(groups) == 16  # max_frames 64: 32 units
    batch_groups = [[0], [1], [2, 3], [4, 5, 6, 7]]
    last = next(b for b, members in enumerate(batch_groups) if min_groups - 1 in members)
    window = {int(u) for members in batch_groups[:last + 2] for g in members for u in groups[g]}
    kept_units = set(torch.unique(plan.layout.unit_of(torch.tensor(ans.trace.kept_token_ids))).tolist())
    fpu = plan.layout.frames_per_unit
    allowed = {int(plan.indices[u * fpu + f]) for u in window | kept_units for f in range(fpu)}
    assert kept_units <= window  # the budget is spent on the visited groups: no top-up from others
    assert set(reads.indices) <= allowed and len(allowed) < len(plan.indices)


def test_lite_reads_a_long_gop_video_in_one_pass(toy, long_video, tmp_path):
    """Keyframes every 100 frames, samples every 2nd frame: reading a group alone costs 1 + 100 / (2 * 2 * 2) = 13.5
    times a pass per frame (video_cache.group_read_cost), more than Lite's stopping early can save."""
    import av

    from adapttoken_plugin.video.pyav_backend import keyframe_interval

    model, processor = toy
    path = tmp_path / "long_gop.mp4"
    container = av.open(str(path), mode="w")
    stream = container.add_stream("libx264", rate=8)
    stream.width, stream.height, stream.pix_fmt = 84, 56, "yuv420p"
    stream.options = {"crf": "10", "g": "100", "keyint_min": "100", "sc_threshold": "0"}
    rng = np.random.default_rng(4)
    for _ in range(200):
        frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (56, 84, 3), dtype=np.uint8), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    assert keyframe_interval(str(path)) == 100 and keyframe_interval(str(long_video)) == 7  # x264 at gop_size 8
    cfg = _cfg(selector="adapttoken-lite", theta=100.0, budget=12)
    long_gop = Pipeline(model, processor, cfg).answer(path, "What colour?", OPTIONS).trace
    assert (long_gop.decode_order, long_gop.groups_visited, long_gop.frames_decoded) == ("one pass", 1, 64)
    short_gop = Pipeline(model, processor, cfg).answer(long_video, "What colour?", OPTIONS).trace  # cost 1.9
    assert short_gop.decode_order == "growing batches" and short_gop.frames_decoded < 64
    adapttoken = Pipeline(model, processor, _cfg(budget=12)).answer(long_video, "What colour?", OPTIONS).trace
    assert adapttoken.decode_order == "one pass"


def test_a_cache_budget_smaller_than_the_video_bounds_what_is_held_and_changes_no_answer(toy, long_video):
    model, processor = toy
    lite = {"theta": 0.0, "min_groups": 8}  # visits 8 of 25 groups
    for selector, extra in (("adapttoken", {}), ("adapttoken-lite", lite)):
        cfg = _cfg(selector=selector, budget=30, frame_cache="memory", video_cache_mib=1, fps=8.0, max_frames=200,
                   frames_per_group=8, **extra)
        pipe = Pipeline(model, processor, cfg)
        assert 200 * 56 * 84 * 3 > pipe.cache.budget == 2**20  # the sampled frames take 2.7 MiB
        first = pipe.answer(long_video, "What colour?", OPTIONS)
        second = pipe.answer(long_video, "What colour?", OPTIONS)  # partly from the cache, partly decoded again
        assert pipe.cache.peak_bytes <= pipe.cache.budget
        assert first.trace.frame_cache == "memory"
        off = Pipeline(model, processor, cfg.replace(frame_cache="off")).answer(long_video, "What colour?", OPTIONS)
        assert _outcome(first) == _outcome(second) == _outcome(off)


@pytest.mark.parametrize("selector", ["adapttoken", "adapttoken-lite", "uniform"])
def test_background_decoding_changes_no_answer(toy, long_video, selector):
    model, processor = toy
    cfg = _cfg(selector=selector, budget=30, **({"theta": 0.5} if selector == "adapttoken-lite" else {}))
    ahead = Pipeline(model, processor, cfg).answer(long_video, "What colour?", OPTIONS)
    inline = Pipeline(model, processor, cfg.replace(decode_ahead=False)).answer(long_video, "What colour?", OPTIONS)
    assert _outcome(ahead) == _outcome(inline)


def test_a_frame_that_fails_to_decode_in_the_background_fails_the_answer(toy, long_video, monkeypatch):
    model, processor = toy
    pipe = Pipeline(model, processor, _cfg(budget=30))
    broken = int(pipe.plan_video(long_video).indices[41])  # a sampled frame of group 4, late in the pass
    read = FrameReader.read

    def failing_read(reader, indices):
        if broken in list(indices):
            raise at.VideoReadError(f"frame {broken} could not be decoded")
        return read(reader, indices)

    monkeypatch.setattr(FrameReader, "read", failing_read)
    with pytest.raises(at.VideoReadError, match=f"frame {broken}"):
        pipe.answer(long_video, "What colour?", OPTIONS)
