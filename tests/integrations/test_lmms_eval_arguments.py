"""`--model_args` strings, parsed by lmms-eval's own parser, into a validated AdaptTokenConfig."""

import pytest
from lmms_eval.utils import simple_parse_args_string

from adapttoken_plugin import ConfigError
from adapttoken_plugin.integrations.lmms_eval.arguments import parse_model_args
from adapttoken_plugin.integrations.lmms_eval.qwen2_5_vl import AdaptTokenQwen2_5_VL

ALIASES = {"max_num_frames": "max_frames", "fps": "fps"}


def parse(arg_string, processor_args=("min_pixels", "max_pixels")):
    return parse_model_args("adapttoken_qwen2_5_vl", simple_parse_args_string(arg_string), ALIASES, processor_args)


def test_harness_values_are_coerced():
    raw = simple_parse_args_string("adapttoken_seed=-1,adapttoken_scoring_layer=None,adapttoken_dedup=False,"
                                   "adapttoken_tau=0.5,adapttoken_budget=512,adapttoken_selector=adapttoken-lite")
    assert raw["adapttoken_seed"] == -1.0 and raw["adapttoken_scoring_layer"] == "None"  # what lmms-eval hands over
    cfg = parse_model_args("m", raw).config
    assert cfg.seed == -1 and type(cfg.seed) is int
    assert cfg.scoring_layer is None and cfg.dedup is False and cfg.tau == 0.5
    assert cfg.budget == 512 and type(cfg.budget) is int and cfg.selector == "adapttoken-lite"
    assert parse("adapttoken_dedup=True,adapttoken_budget=4096.0").config.dedup is True


@pytest.mark.parametrize("arg_string, key", [
    ("adapttoken_budget=-1", "budget"),
    ("adapttoken_budget=1.5", "budget"),
    ("adapttoken_budgte=64", "adapttoken_budgte"),
    ("adapttoken_selector=nope", "selector"),
    ("adapttoken_tau=abc", "tau"),
    ("adapttoken_scoring_layer=-1", "scoring_layer"),
    ("adapttoken_budget=None", "budget"),
    ("interleave_visuals=True", "interleave_visuals"),
    ("max_num_frames=64,adapttoken_max_frames=128", "max_num_frames"),
])
def test_bad_arguments_raise_config_error_naming_the_key(arg_string, key):
    with pytest.raises(ConfigError, match=key):
        parse(arg_string)


def test_family_aliases_and_processor_arguments():
    args = parse("max_num_frames=4096,fps=2,max_pixels=200704,min_pixels=3136,adapttoken_budget=7040")
    assert args.config.max_frames == 4096 and args.config.fps == 2.0 and args.config.budget == 7040
    assert args.processor_kwargs == {"max_pixels": 200704, "min_pixels": 3136}
    assert parse("max_num_frames=64,adapttoken_max_frames=64.0").config.max_frames == 64  # same value, both given


@pytest.mark.parametrize("arg_string, key", [
    ("pretrained=/nonexistent,adapttoken_budgte=64", "adapttoken_budgte"),
    ("pretrained=/nonexistent,batch_size=2", "batch_size"),
    ("pretrained=/nonexistent,torch_dtype=int8", "torch_dtype"),
    ("pretrained=/nonexistent,video_decode_backend=opencv", "video_decode_backend"),
])
def test_model_class_validates_arguments_before_loading_anything(arg_string, key):
    with pytest.raises(ConfigError, match=key):  # a load attempt would raise OSError for the missing checkpoint
        AdaptTokenQwen2_5_VL.create_from_arg_string(arg_string, {"batch_size": None, "device": "cpu"})
