"""The lmms-eval model classes answer requests exactly as the streaming Pipeline does on the same model."""

import numpy as np
import pytest
from lmms_eval.api.instance import Instance
from PIL import Image

from adapttoken_plugin import AdaptTokenConfig, NoVideoError, Pipeline, UnsupportedInputError
from adapttoken_plugin.integrations.lmms_eval.internvl import AdaptTokenInternVL
from adapttoken_plugin.integrations.lmms_eval.llava_onevision import AdaptTokenLlavaOneVision
from adapttoken_plugin.integrations.lmms_eval.model import _cut_at_stops
from adapttoken_plugin.integrations.lmms_eval.qwen2_5_vl import AdaptTokenQwen2_5_VL
from adapttoken_plugin.integrations.lmms_eval.qwen3_vl import AdaptTokenQwen3_VL
from adapttoken_plugin.needle import VIDEO_FPS, make_question, write_video_file
from adapttoken_plugin.toy import NEEDLE_MODEL_DIR, load_needle_model
from adapttoken_plugin.video import write_video

NEEDLE_ARGS = dict(adapttoken_fps=VIDEO_FPS, adapttoken_max_frames=256, adapttoken_frames_per_group=64,
                   adapttoken_budget=16, adapttoken_selector="adapttoken")
NEEDLE_PROMPT = ("What colour was the large shape that appeared briefly?\nA. red\nB. green\nC. blue\nD. yellow\n"
                 "Answer with the option's letter from the given choices directly.")


def requests_for(lmm, docs, prompt, gen_kwargs, visual=lambda doc: [doc["video"]]):
    """Requests as lmms-eval's ConfigurableTask builds them for a simple model, with the docs in task_dict."""
    lmm.task_dict = {"t": {"test": dict(enumerate(docs))}}
    return [Instance("generate_until", (prompt, dict(gen_kwargs), visual, i, "t", "test"), idx=0,
                     metadata={"task": "t", "doc_id": i, "repeats": 1}) for i in range(len(docs))]


@pytest.fixture(scope="module")
def needle_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("needle")
    return [write_video_file(q, root / f"q{q.seed}.mp4") for q in (make_question(s, 256) for s in (1, 2, 3))]


@pytest.fixture(scope="module")
def qwen_lmm():
    args = ",".join(f"{k}={v}" for k, v in NEEDLE_ARGS.items())
    return AdaptTokenQwen2_5_VL.create_from_arg_string(f"pretrained={NEEDLE_MODEL_DIR},{args}", {"device": "cpu"})


def test_qwen_replies_equal_the_pipeline_answers(qwen_lmm, needle_videos):
    replies = qwen_lmm.generate_until(requests_for(qwen_lmm, [{"video": str(v)} for v in needle_videos],
                                                   NEEDLE_PROMPT, {"max_new_tokens": 4, "until": ["\n\n"]}))
    model, processor = load_needle_model()  # an independent copy of the checkpoint
    pipe = Pipeline(model, processor, AdaptTokenConfig.from_dict(NEEDLE_ARGS))
    q_opts = ["red", "green", "blue", "yellow"]
    expected = [pipe.answer(v, "What colour was the large shape that appeared briefly?", q_opts, max_new_tokens=4).text
                for v in needle_videos]
    assert replies == expected
    assert all(reply[:1] in "ABCD" and reply for reply in replies)


def test_consecutive_questions_on_one_video_decode_and_encode_it_once(qwen_lmm, needle_videos):
    """VideoMME asks three questions per video, one request after another: the model's one Pipeline keeps the
    video's frames and group features, and the replies are those of a fresh pipeline per question."""
    questions = ["What colour was the large shape that appeared briefly?", "Which colour did the shape have?",
                 "What was the colour of the brief large shape?"]
    options = "\nA. red\nB. green\nC. blue\nD. yellow\nAnswer with the option's letter from the given choices directly."
    video = str(needle_videos[2])
    qwen_lmm.task_dict = {"t": {"test": {0: {"video": video}}}}
    requests = [Instance("generate_until", (q + options, {"max_new_tokens": 4}, lambda doc: [doc["video"]], 0, "t",
                                            "test"), idx=0, metadata={"task": "t", "doc_id": 0, "repeats": 1})
                for q in questions]
    qwen_lmm.pipeline.clear_cache()
    traces, answer_request = [], qwen_lmm.pipeline.answer
    qwen_lmm.pipeline.answer = lambda *a, **kw: traces.append(answer_request(*a, **kw)) or traces[-1]
    try:
        replies = qwen_lmm.generate_until(requests)
    finally:
        del qwen_lmm.pipeline.answer
    decoded = [a.trace.frames_decoded for a in traces]
    encoded = [a.trace.encoder_calls for a in traces]
    assert decoded[0] == 256 and decoded[1:] == [0, 0]
    assert encoded[0] == 4 and encoded[1:] == [0, 0]  # 4 groups of 64 frames
    model, processor = load_needle_model()
    expected = [Pipeline(model, processor, AdaptTokenConfig.from_dict(NEEDLE_ARGS)).answer(video, q + options,
                                                                                         max_new_tokens=4).text
                for q in questions]
    assert replies == expected


@pytest.mark.parametrize("gen_kwargs", [{"temperature": 0.7}, {"do_sample": True}, {"num_beams": 4}])
def test_sampling_or_beam_search_is_refused(qwen_lmm, needle_videos, gen_kwargs):
    with pytest.raises(UnsupportedInputError, match="greedily"):
        qwen_lmm.generate_until(requests_for(qwen_lmm, [{"video": str(needle_videos[0])}], NEEDLE_PROMPT, gen_kwargs))


@pytest.mark.parametrize("visual", [lambda doc: [doc["video"], doc["video"]], lambda doc: [Image.new("RGB", (8, 8))],
                                    lambda doc: []])
def test_documents_without_exactly_one_video_are_refused(qwen_lmm, needle_videos, visual):
    with pytest.raises(NoVideoError, match="exactly one video"):
        qwen_lmm.generate_until(requests_for(qwen_lmm, [{"video": str(needle_videos[0])}], NEEDLE_PROMPT, {}, visual))


def test_prompts_with_interleaved_images_are_refused(qwen_lmm, needle_videos):
    with pytest.raises(UnsupportedInputError, match="<image>"):
        qwen_lmm.generate_until(requests_for(qwen_lmm, [{"video": str(needle_videos[0])}], "<image>\nWhat?", {}))


@pytest.mark.parametrize("family, cls", [("qwen2_5_vl", AdaptTokenQwen2_5_VL), ("qwen3_vl", AdaptTokenQwen3_VL),
                                         ("internvl", AdaptTokenInternVL),
                                         ("llava_onevision", AdaptTokenLlavaOneVision)])
def test_each_class_loads_its_family_checkpoint_and_processor(tmp_path, family, cls):
    import torch

    from fixtures.families import FAMILIES

    spec = FAMILIES[family]
    spec.model().save_pretrained(tmp_path)
    spec.build_processor().save_pretrained(tmp_path)
    lmm = cls.__new__(cls)
    lmm._device = torch.device("cpu")
    model, processor = lmm.load(str(tmp_path), None, "auto", None, {})
    assert type(model).__name__ == cls.model_class and not model.training
    assert type(processor).__name__ == type(spec.build_processor()).__name__


def test_replies_are_cut_at_the_task_stop_strings():
    assert _cut_at_stops("C. blue\n\nD. yellow", ["\n\n"]) == "C. blue"
    assert _cut_at_stops("C. blue</s>x", "</s>") == "C. blue"
    assert _cut_at_stops("C", None) == "C"


@pytest.mark.parametrize("family, cls", [("qwen3_vl", AdaptTokenQwen3_VL), ("internvl", AdaptTokenInternVL),
                                         ("llava_onevision", AdaptTokenLlavaOneVision)])
def test_replies_equal_the_pipeline_answer_on_each_family(tmp_path, family, cls):
    import transformers

    from fixtures.families import FAMILIES

    spec = FAMILIES[family]
    checkpoint = tmp_path / f"tiny-{family}"
    spec.model().save_pretrained(checkpoint)
    spec.build_processor().save_pretrained(checkpoint)
    video = tmp_path / "clip.mp4"
    rng = np.random.default_rng(0)
    write_video(video, (rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(8)), fps=2.0)

    # pyav: decord fails to open some tiny frame sizes (DECORDError)
    lmm = cls.create_from_arg_string(
        f"pretrained={checkpoint},adapttoken_max_frames=8,adapttoken_fps=2,adapttoken_frames_per_group=4,"
        "adapttoken_budget=3,video_decode_backend=pyav", {"device": "cpu"})
    assert lmm.adapttoken_config.max_frames == 8
    prompt = "Which colour? A. red B. blue"
    seen, answer_request = [], lmm.pipeline.answer
    lmm.pipeline.answer = lambda *a, **kw: seen.append(answer_request(*a, **kw)) or seen[-1]
    replies = lmm.generate_until(requests_for(lmm, [{"video": str(video)}], prompt, {"max_new_tokens": 5}))

    model = getattr(transformers, cls.model_class).from_pretrained(checkpoint).eval()
    cfg = AdaptTokenConfig(fps=2, max_frames=8, frames_per_group=4, budget=3)
    pipe = Pipeline(model, transformers.AutoProcessor.from_pretrained(checkpoint), cfg, backend="pyav")
    answer = pipe.answer(video, prompt, max_new_tokens=5)
    assert replies == [answer.text]
    assert seen[0].trace.kept_token_ids == answer.trace.kept_token_ids
    assert answer.trace.kept_tokens == 3 < answer.trace.total_tokens


def test_a_yarn_override_reaches_the_model_as_the_model_cards_config_edit_does(tmp_path):
    """`rope_scaling=yarn,rope_factor=4` gives the model that YaRN written into the checkpoint's config gives (the
    Qwen2.5-VL model card's way, which lmms-eval's own `qwen2_5_vl` needs), and with `adapttoken_selector=full` it
    answers as the Pipeline on that model does: the base run with YaRN."""
    import json
    import math
    import shutil

    import torch
    import transformers

    from adapttoken_plugin.toy import toy_model, toy_processor

    checkpoint, edited = tmp_path / "tiny", tmp_path / "tiny-yarn"
    toy_model().save_pretrained(checkpoint)
    toy_processor().save_pretrained(checkpoint)
    shutil.copytree(checkpoint, edited)
    config = json.loads((edited / "config.json").read_text())
    own = dict(config["text_config"]["rope_parameters"])
    config["text_config"]["rope_parameters"] = {**own, "rope_type": "yarn", "factor": 4.0,
                                                "original_max_position_embeddings": 8192}
    (edited / "config.json").write_text(json.dumps(config))
    video = tmp_path / "clip.mp4"
    rng = np.random.default_rng(0)
    write_video(video, (rng.integers(0, 255, (56, 56, 3), dtype=np.uint8) for _ in range(8)), fps=2.0)

    lmm = AdaptTokenQwen2_5_VL.create_from_arg_string(
        f"pretrained={checkpoint},rope_scaling=yarn,rope_factor=4,rope_original_max_position_embeddings=8192,"
        "adapttoken_selector=full,adapttoken_fps=2,adapttoken_max_frames=8,video_decode_backend=pyav",
        {"device": "cpu"})
    model = lmm.pipeline.model
    assert model.config.text_config.rope_parameters == {**own, "rope_type": "yarn", "factor": 4.0,
                                                        "original_max_position_embeddings": 8192}
    rotary = model.model.language_model.rotary_emb
    assert rotary.rope_type == "yarn"
    assert rotary.attention_scaling == pytest.approx(0.1 * math.log(4) + 1)  # YaRN's attention factor for s = 4

    model_class = transformers.Qwen2_5_VLForConditionalGeneration
    by_config_edit = model_class.from_pretrained(edited).eval()
    plain = model_class.from_pretrained(checkpoint).eval()
    ids = torch.randint(0, 256, (1, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(input_ids=ids).logits
        assert torch.equal(logits, by_config_edit(input_ids=ids).logits)
        assert not torch.allclose(logits, plain(input_ids=ids).logits)  # the override changes the model

    prompt = "Which colour? A. red B. blue"
    replies = lmm.generate_until(requests_for(lmm, [{"video": str(video)}], prompt, {"max_new_tokens": 5}))
    pipe = Pipeline(by_config_edit, transformers.AutoProcessor.from_pretrained(edited),
                    AdaptTokenConfig(selector="full", fps=2, max_frames=8), backend="pyav")
    answer = pipe.answer(video, prompt, max_new_tokens=5)
    assert replies == [answer.text]
    assert answer.trace.kept_tokens == answer.trace.total_tokens  # the selector is off: every visual token
