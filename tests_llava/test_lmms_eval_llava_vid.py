"""`adapttoken_llava_vid`: argument handling and the `llava` -> fork binding.

lmms-eval 0.7.3 is not installed in this venv (it would pull ~100 packages next to transformers 4.51.3),
so the class is tested against a stand-in `lmms_eval` written here with what the subclass relies on
from the real one: `lmms_eval.api.model.lmms`, and `models/simple/llava_vid.py::LlavaVid`, which imports
`llava.*` at its top and asserts it got no unknown keyword argument. The stand-in loads a saved tiny
model through the `llava` name, so the test shows the fork standing in for `llava`.
"""

import sys
import textwrap

import pytest
import torch
from tiny_llava import llava_qwen, prompt_ids, video

from adapttoken_plugin.errors import ConfigError

STANDIN = {
    "lmms_eval/__init__.py": "",
    "lmms_eval/api/__init__.py": "",
    "lmms_eval/api/model.py": """
        class lmms:
            def __init__(self):
                self._rank = 0
    """,
    "lmms_eval/models/__init__.py": "",
    "lmms_eval/models/simple/__init__.py": "",
    "lmms_eval/models/simple/llava_vid.py": """
        from llava.constants import IMAGE_TOKEN_INDEX
        from llava.model.builder import load_pretrained_model
        from llava.model.language_model.llava_qwen import LlavaQwenConfig, LlavaQwenForCausalLM

        from lmms_eval.api.model import lmms

        CALLS = []


        class LlavaVid(lmms):
            def __init__(self, pretrained="x", max_frames_num=20, conv_template="vicuna_v1", device_map="cuda:0",
                         batch_size=1, **kwargs):
                super().__init__()
                assert kwargs == {}, f"Unexpected kwargs: {kwargs}"
                CALLS.append(dict(pretrained=pretrained, max_frames_num=max_frames_num, conv_template=conv_template,
                                  device_map=device_map, batch_size=batch_size))
                self._model = LlavaQwenForCausalLM.from_pretrained(pretrained, attn_implementation="sdpa").eval()

            @property
            def model(self):
                return self._model
    """,
}


@pytest.fixture
def standin(tmp_path, vision_dir, monkeypatch):
    for name, text in STANDIN.items():
        path = tmp_path / "site" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    checkpoint = tmp_path / "tiny-llava-qwen"
    llava_qwen(vision_dir).save_pretrained(checkpoint)
    yield checkpoint
    for name in [n for n in sys.modules if n.split(".")[0] in ("lmms_eval", "llava")]:
        del sys.modules[name]
    for name in [n for n in sys.modules if n.startswith("adapttoken_plugin.integrations.lmms_eval")]:
        del sys.modules[name]


def test_arguments_are_popped_coerced_and_validated(standin):
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


def test_the_class_runs_llava_vid_on_the_named_fork_with_selection(standin):
    import llavaction.model.builder

    from adapttoken_plugin.integrations import llava
    from adapttoken_plugin.integrations.lmms_eval.llava_vid import AdaptTokenLlavaVid

    wrapper = AdaptTokenLlavaVid(pretrained=str(standin), max_frames_num="8", adapttoken_budget="20",
                                 adapttoken_frames_per_group="4", adapttoken_llava_package="llavaction", batch_size=1)
    llava_vid = sys.modules["lmms_eval.models.simple.llava_vid"]
    assert isinstance(wrapper, AdaptTokenLlavaVid) and isinstance(wrapper, llava_vid.LlavaVid)
    assert sys.modules["llava.model.builder"] is llavaction.model.builder
    assert llava_vid.CALLS == [dict(pretrained=str(standin), max_frames_num="8", conv_template="vicuna_v1",
                                    device_map="cuda:0", batch_size=1)]
    assert llava.is_enabled(wrapper.model) and wrapper.adapttoken_config.budget == 20
    # the call lmms-eval's llava_vid.generate_until makes
    wrapper.model.generate(inputs=prompt_ids(), images=[video(8)], attention_mask=torch.ones(1, 11, dtype=torch.long),
                           modalities="video", use_cache=True, do_sample=False, max_new_tokens=3)
    assert wrapper.model.adapttoken_trace.kept_tokens == 20


def test_bad_settings_fail_before_the_model_is_loaded(standin):
    from adapttoken_plugin.integrations.lmms_eval.llava_vid import AdaptTokenLlavaVid

    with pytest.raises(ConfigError, match="'adapttoken_selectr'"):
        AdaptTokenLlavaVid(pretrained=str(standin), adapttoken_selectr="uniform", adapttoken_llava_package="llavaction")
    assert "lmms_eval.models.simple.llava_vid" not in sys.modules  # refused before llava_vid was even imported
    with pytest.raises(ConfigError, match="cannot import 'no_such_fork'"):
        AdaptTokenLlavaVid(pretrained=str(standin), adapttoken_llava_package="no_such_fork")
