"""`--model_args` strings, parsed by lmms-eval's own parser, into a validated AdaptTokenConfig."""

import pytest
import torch
from lmms_eval.utils import simple_parse_args_string

from adapttoken_plugin import ConfigError
from adapttoken_plugin.integrations.lmms_eval.arguments import RopeOverride, parse_model_args, rope_override
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
    ("pretrained=/nonexistent,rope_factor=4", "rope_factor=4 has no effect without rope_scaling"),
    ("pretrained=/nonexistent,rope_original_max_position_embeddings=32768", "rope_original_max_position_embeddings"),
    ("pretrained=/nonexistent,rope_scaling=linear,rope_factor=4", "rope_scaling='linear' is not supported"),
    ("pretrained=/nonexistent,rope_scaling=yarn", "rope_scaling=yarn needs rope_factor"),
    ("pretrained=/nonexistent,rope_scaling=yarn,rope_factor=0.5", "rope_factor=0.5 is out of range"),
    ("pretrained=/nonexistent,rope_scaling=yarn,rope_factor=four", "rope_factor='four' is out of range"),
    ("pretrained=/nonexistent,rope_scaling=yarn,rope_factor=4,rope_original_max_position_embeddings=-3",
     "rope_original_max_position_embeddings=-3"),
    ("pretrained=/nonexistent,rope_scaling=yarn,rope_factor=4,rope_original_max_position_embeddings=1.5",
     "rope_original_max_position_embeddings=1.5"),
])
def test_model_class_validates_arguments_before_loading_anything(arg_string, key):
    with pytest.raises(ConfigError, match=key):  # a load attempt would raise OSError for the missing checkpoint
        AdaptTokenQwen2_5_VL.create_from_arg_string(arg_string, {"batch_size": None, "device": "cpu"})


def test_rope_scaling_arguments_as_lmms_eval_hands_them_over():
    raw = simple_parse_args_string("rope_scaling=yarn,rope_factor=4,rope_original_max_position_embeddings=32768")
    assert rope_override(raw["rope_scaling"], raw["rope_factor"], raw["rope_original_max_position_embeddings"]) == \
        RopeOverride("yarn", 4.0, 32768)
    assert rope_override("YaRN", "2.5", None) == RopeOverride("yarn", 2.5, None)
    assert rope_override("None", "None", None) is None  # lmms-eval's spelling of a missing value


@pytest.mark.parametrize("original", [None, 8192])
def test_the_yarn_override_is_the_model_cards_config_edit(original):
    """The Qwen2.5-VL model card enables YaRN by a block in the hub's flat `config.json`: the override gives the
    text model the same rotary embedding (transformers' own class computes both)."""
    from transformers import Qwen2_5_VLConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLRotaryEmbedding

    from adapttoken_plugin.toy import toy_config

    ours = toy_config()
    section = list(ours.text_config.rope_parameters["mrope_section"])
    RopeOverride("yarn", 4.0, original).apply(ours)
    text = ours.text_config.to_dict()
    flat = {k: v for k, v in text.items() if k not in ("rope_parameters", "model_type", "architectures", "dtype",
                                                       "transformers_version")}
    block = {"type": "yarn", "mrope_section": section, "factor": 4}
    if original is not None:
        block["original_max_position_embeddings"] = original
    card = Qwen2_5_VLConfig(**flat, rope_scaling=block, rope_theta=text["rope_parameters"]["rope_theta"],
                            vision_config=ours.vision_config.to_dict(), video_token_id=ours.video_token_id,
                            image_token_id=ours.image_token_id, vision_start_token_id=ours.vision_start_token_id,
                            vision_end_token_id=ours.vision_end_token_id)
    a, b = Qwen2_5_VLRotaryEmbedding(ours.text_config), Qwen2_5_VLRotaryEmbedding(card.text_config)
    assert a.rope_type == b.rope_type == "yarn"
    assert torch.equal(a.inv_freq, b.inv_freq) and a.attention_scaling == b.attention_scaling
    assert a.mrope_section == b.mrope_section == section
    plain = Qwen2_5_VLRotaryEmbedding(toy_config().text_config)
    assert not torch.equal(a.inv_freq, plain.inv_freq)  # YaRN changes the frequencies
