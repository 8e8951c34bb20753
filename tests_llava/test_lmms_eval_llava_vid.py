"""`adapttoken_llava_vid` through the real lmms-eval 0.7.3 `llava_vid` on the fork `llavaction`.

lmms-eval's `llava_vid` imports `llava.*` at its top; `adapttoken_llava_package=llavaction` makes the fork
stand for `llava`. Requests are answered the way lmms-eval does it (`create_from_arg_string`, decord
frames, the fork's image processor and the `qwen_1_5` template) on a tiny random checkpoint and an mp4.
"""

import pytest
from tiny_llava import lmms_checkpoint, noise_video

from adapttoken_plugin.errors import ConfigError

ARGS = "conv_template=qwen_1_5,max_frames_num=16,mm_spatial_pool_mode=bilinear,device_map=auto,torch_dtype=bfloat16"
OURS = "adapttoken_frames_per_group=4,adapttoken_llava_package=llavaction"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    work = tmp_path_factory.mktemp("lmms")
    return lmms_checkpoint(work), noise_video(work / "noise.mp4")


def _answer(cls, arg_string, video):
    from lmms_eval.api.instance import Instance

    model = cls.create_from_arg_string(arg_string, {"batch_size": 1, "device": "cpu"})
    model.task_dict = {"t": {"test": {0: {}}}}
    request = Instance(request_type="generate_until", idx=0, metadata={"task": "t", "doc_id": 0, "repeats": 1},
                       arguments=("t5 t6 t7 t8", {"max_new_tokens": 4}, lambda doc: [str(video)], 0, "t", "test"))
    return model, model.generate_until([request])


def test_arguments_are_popped_coerced_and_validated():
    from adapttoken_plugin.integrations.lmms_eval.llava_vid import split_model_args

    config, package, rest = split_model_args({
        "pretrained": "ckpt", "max_frames_num": 64, "adapttoken_budget": 4096.0, "adapttoken_scoring_layer": "None",
        "adapttoken_theta": "0.5", "adapttoken_dedup": "false", "adapttoken_llava_package": "llavaction",
    })
    assert (config.budget, config.scoring_layer, config.theta, config.dedup) == (4096, None, 0.5, False)
    assert package == "llavaction" and rest == {"pretrained": "ckpt", "max_frames_num": 64}
    assert split_model_args({})[1] == "llava"
    with pytest.raises(ConfigError, match="'adapttoken_budgett'"):
        split_model_args({"adapttoken_budgett": 10})
    with pytest.raises(ConfigError, match="tau=-1.0"):  # lmms-eval hands `-1` over as -1.0
        split_model_args({"adapttoken_tau": -1.0})
    with pytest.raises(ConfigError, match="budget=None"):
        split_model_args({"adapttoken_budget": "None"})
    with pytest.raises(ConfigError, match="adapttoken_max_frames has no effect.*max_frames_num"):
        split_model_args({"adapttoken_max_frames": 64})


def test_the_registry_resolves_the_id_to_the_subclass():
    from lmms_eval.api.model import lmms
    from lmms_eval.models import MODEL_REGISTRY_V2

    from adapttoken_plugin.integrations.lmms_eval.llava_vid import AdaptTokenLlavaVid

    assert MODEL_REGISTRY_V2.get_model_class("adapttoken_llava_vid") is AdaptTokenLlavaVid
    assert issubclass(AdaptTokenLlavaVid, lmms)


def test_full_budget_answers_as_stock_llava_vid_and_a_small_budget_sends_exactly_it(files):
    from adapttoken_plugin.integrations.lmms_eval.llava_vid import AdaptTokenLlavaVid

    checkpoint, video = files
    small, small_answer = _answer(AdaptTokenLlavaVid, f"pretrained={checkpoint},{ARGS},{OURS},adapttoken_budget=40",
                                  video)
    full, full_answer = _answer(AdaptTokenLlavaVid, f"pretrained={checkpoint},{ARGS},{OURS},adapttoken_budget=100000",
                                video)
    import lmms_eval.models.simple.llava_vid as llava_vid  # importable now: `llava` stands for the fork

    stock, stock_answer = _answer(llava_vid.LlavaVid, f"pretrained={checkpoint},{ARGS}", video)
    assert isinstance(small, llava_vid.LlavaVid) and small.adapttoken_config.budget == 40
    assert full_answer == stock_answer and full.model.adapttoken_trace.kept_tokens == 128  # 8 frames x 16
    trace = small.model.adapttoken_trace
    assert (trace.kept_tokens, trace.total_tokens) == (40, 128)
    assert trace.kept_token_ids == sorted(trace.kept_token_ids)  # temporal, then raster order
    assert getattr(stock.model, "adapttoken_trace", None) is None


def test_bad_settings_fail_before_the_model_is_loaded(tmp_path):
    from adapttoken_plugin.integrations.lmms_eval.llava_vid import AdaptTokenLlavaVid

    missing = tmp_path / "no-checkpoint"  # loading it would fail with another error
    with pytest.raises(ConfigError, match="'adapttoken_selectr'"):
        AdaptTokenLlavaVid.create_from_arg_string(f"pretrained={missing},adapttoken_selectr=uniform,"
                                                  "adapttoken_llava_package=llavaction")
    with pytest.raises(ConfigError, match="cannot import 'no_such_fork'"):
        AdaptTokenLlavaVid(pretrained=str(missing), adapttoken_llava_package="no_such_fork")


def test_consecutive_requests_on_one_video_decode_it_once(files, tmp_path, monkeypatch):
    from lmms_eval.api.instance import Instance
    from tiny_llava import noise_video

    from adapttoken_plugin.integrations.lmms_eval.llava_vid import AdaptTokenLlavaVid

    checkpoint, video = files
    model = AdaptTokenLlavaVid.create_from_arg_string(f"pretrained={checkpoint},{ARGS},{OURS},adapttoken_budget=40",
                                                      {"batch_size": 1, "device": "cpu"})
    import lmms_eval.models.simple.llava_vid as llava_vid

    reads, load = [], llava_vid.LlavaVid.load_video
    monkeypatch.setattr(llava_vid.LlavaVid, "load_video", lambda self, path, *a, **kw: reads.append(path) or
                        load(self, path, *a, **kw))
    other = noise_video(tmp_path / "other.mp4")
    model.task_dict = {"t": {"test": {0: {"video": str(video)}, 1: {"video": str(other)}}}}

    def request(prompt, doc):
        return Instance(request_type="generate_until", idx=0, metadata={"task": "t", "doc_id": doc, "repeats": 1},
                        arguments=(prompt, {"max_new_tokens": 4}, lambda d: [d["video"]], doc, "t", "test"))

    replies = model.generate_until([request("t5 t6 t7 t8", 0), request("t6 t7", 0), request("t5 t6 t7 t8", 1),
                                    request("t5 t6 t7 t8", 0)])
    assert reads == [str(video), str(other), str(video)]  # one decode per run of requests on a video
    assert replies[3] == replies[0]
    assert not model._last_video[1][0].flags.writeable
