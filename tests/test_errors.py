"""The error hierarchy as docs/usage.md describes it: every class is importable from the package, the "Errors"
section names each one, and the public entry points, walked with bad values, raise the class the section says
(and leave the model as it was)."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import adapttoken_plugin as at
from adapttoken_plugin import errors
from adapttoken_plugin.toy import toy_model, toy_processor
from adapttoken_plugin.video import write_video
from fixtures.tiny import VEND, VID, VSTART, qwen2_5_vl, qwen_video_inputs
from fixtures.untouched import Untouched

USAGE = Path(__file__).resolve().parents[1] / "docs" / "usage.md"
OPTIONS = ["red", "green", "blue", "yellow"]
ENABLED = {"budget": 6, "frames_per_group": 4, "scoring_layer": 1}
#: classes raised only across tensor-parallel ranks: walked by tests/distributed/test_tensor_parallel.py
#: (a rank fed another video, a rank that stops taking part)
RANK_ERRORS = {"RankDivergenceError", "RankTimeoutError"}


def _error_classes() -> dict[str, type]:
    return {name: cls for name, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, at.AdaptTokenError) and cls.__module__ == errors.__name__}


def _errors_section() -> str:
    text = USAGE.read_text()
    return text[text.index("\n## Errors"):].split("\n## ", 2)[1]


def test_every_error_class_is_exported_from_the_package():
    for name, cls in _error_classes().items():
        assert getattr(at, name, None) is cls, name
        assert name in at.__all__, name


def test_the_docs_errors_section_names_every_class_and_only_real_ones():
    named = set(re.findall(r"`(\w+Error)`", _errors_section()))
    assert named == set(_error_classes()), named ^ set(_error_classes())


# --- the walk: each documented class from at least one public entry point ------------------------------------

@pytest.fixture(scope="module")
def toy():
    return toy_model(), toy_processor(min_pixels=56 * 56, max_pixels=56 * 56)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    rng = np.random.default_rng(0)
    write_video(path, (rng.integers(0, 255, (56, 56, 3), dtype=np.uint8) for _ in range(16)), fps=4.0)
    return path


def _pipeline_inputs(processor) -> dict:
    """Processor-shaped inputs for the toy model, to check it is untouched after a failed pipeline call."""
    frames = np.random.default_rng(1).integers(0, 255, (4, 56, 56, 3), dtype=np.uint8)
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "video"}, {"type": "text",
                                          "text": "Which colour?"}]}], add_generation_prompt=True, tokenize=False)
    return dict(processor(text=[text], videos=[frames], return_tensors="pt", do_sample_frames=False))


@pytest.mark.parametrize("settings, key", [
    ({"budget": 0}, "budget"), ({"tau": 0}, "tau"), ({"tau": float("nan")}, "tau"), ({"overselect": 1e308},
                                                                                      "overselect"),
    ({"dedup_window": 10**30}, "dedup_window"), ({"score_reduce": "median"}, "score_reduce"),
    ({"bugdet": 5}, "bugdet"), ({"fps": "fast"}, "fps"),
])
def test_config_errors_name_the_key(settings, key):
    with pytest.raises(at.ConfigError, match=key):
        at.AdaptTokenConfig.from_dict(settings)


def test_a_config_changed_after_it_was_made_is_a_config_error_and_the_enabled_model_keeps_its_own():
    model = qwen2_5_vl()
    state = Untouched(model, qwen_video_inputs())
    config = at.AdaptTokenConfig(**ENABLED)
    at.enable(model, config)
    for key, value in (("budget", -5), ("tau", 0)):
        with pytest.raises(at.ConfigError, match="replace"):
            setattr(config, key, value)
    model.generate(**qwen_video_inputs(), max_new_tokens=2, do_sample=False)
    assert model.adapttoken_trace.kept_tokens == 6
    at.disable(model)
    state.check()


def test_unknown_names_are_registry_errors():
    with pytest.raises(at.RegistryError, match="no-such"):
        at.SELECTORS.get("no-such")


def test_enable_refusals_install_nothing():
    model = qwen2_5_vl()
    state = Untouched(model, qwen_video_inputs())
    with pytest.raises(at.UnsupportedModelError, match="no adapter"):
        at.enable(torch.nn.Linear(2, 2))
    with pytest.raises(at.ConfigError, match="scoring_layer"):
        at.enable(model, {"scoring_layer": 99})
    with pytest.raises(at.ConfigError, match="budget"):
        at.enable(model, {"budget": -1})
    state.check()


def _thw_not_divisible_by_the_merge_size() -> dict:
    t, h, w = 4, 3, 4  # the processor writes h and w as multiples of the merge size (2)
    ids = torch.tensor([[5, 6, 7, VSTART] + [VID] * (t * h * w // 4) + [VEND, 8, 9]])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "video_grid_thw": torch.tensor([[t, h, w]]),
            "pixel_values_videos": torch.randn(t * h * w, 3 * 2 * 14 * 14), "second_per_grid_ts": torch.tensor([1.0])}


def _batch_of_two() -> dict:
    inputs = qwen_video_inputs()
    return {k: torch.cat([v, v]) if k in ("input_ids", "attention_mask") else v for k, v in inputs.items()}


@pytest.mark.parametrize("call, error, match", [
    (lambda m: m.generate(**qwen_video_inputs(), num_return_sequences=2, num_beams=2), at.UnsupportedInputError,
     "num_return_sequences=2"),
    (lambda m: m.generate(**_thw_not_divisible_by_the_merge_size(), max_new_tokens=2), at.UnsupportedInputError,
     "merge size"),
    (lambda m: m(**_thw_not_divisible_by_the_merge_size()), at.UnsupportedInputError, "merge size"),
    (lambda m: m.generate(**_batch_of_two(), max_new_tokens=2), at.UnsupportedInputError, "batch|one prompt"),
    (lambda m: m.generate(**qwen_video_inputs(), pixel_values=torch.zeros(4, 1176), max_new_tokens=2),
     at.UnsupportedInputError, "images"),
    (lambda m: m.generate(**{k: v for k, v in qwen_video_inputs().items() if k != "video_grid_thw"}),
     at.NoVideoError, "no video"),
])
def test_inputs_the_enabled_model_cannot_select_raise_before_the_work(call, error, match):
    """`num_return_sequences=2` used to crash in binding.py after every group pass; a grid the processor could not
    have written was answered silently (the unmodified model raises)."""
    model = qwen2_5_vl()
    state = Untouched(model, qwen_video_inputs())
    at.enable(model, ENABLED)
    with pytest.raises(error, match=match):
        call(model)
    assert model.adapttoken_trace is None  # raised before any selection ran
    at.disable(model)
    state.check()


def test_options_entropy_without_options_is_options_required(toy, clip):
    model, processor = toy
    state = Untouched(model, _pipeline_inputs(processor))
    pipe = at.Pipeline(model, processor, {"entropy_mode": "options", "fps": 4, "max_frames": 16, "budget": 8})
    with pytest.raises(at.OptionsRequiredError, match="options"):
        pipe.answer(clip, "Which colour?")
    state.check()


@pytest.mark.parametrize("options, max_new_tokens, error, match", [
    ("red", 2, at.UnsupportedInputError, "list of option strings"),  # used to become the options r, e, d
    ([1, 2], 2, at.UnsupportedInputError, "string"),
    ([f"o{i}" for i in range(27)], 2, at.UnsupportedInputError, "at most 26"),
    (OPTIONS, 0, at.ConfigError, "max_new_tokens=0"),  # used to surface from transformers after the group passes
])
def test_pipeline_arguments_are_checked_before_the_video_is_read(toy, clip, monkeypatch, options, max_new_tokens,
                                                                   error, match):
    model, processor = toy
    state = Untouched(model, _pipeline_inputs(processor))
    pipe = at.Pipeline(model, processor, {"fps": 4, "max_frames": 16, "budget": 8})
    monkeypatch.setattr(pipe, "open_video", lambda *a: pytest.fail("the video must not be read"))
    with pytest.raises(error, match=match):
        pipe.answer(clip, "Which colour?", options, max_new_tokens=max_new_tokens)
    state.check()


def test_videos_that_cannot_be_read_or_sized(toy, clip, tmp_path):
    model, processor = toy
    state = Untouched(model, _pipeline_inputs(processor))
    pipe = at.Pipeline(model, processor, {"fps": 4, "max_frames": 16, "budget": 8})
    with pytest.raises(at.VideoReadError, match="no such file"):
        pipe.answer(tmp_path / "none.mp4", "Which colour?", OPTIONS)
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(at.VideoReadError):
        pipe.answer(tmp_path / "junk.mp4", "Which colour?", OPTIONS)
    with pytest.raises(at.EmptyVideoError, match="no frames"):
        at.Pipeline(model, processor, {"fps": 1e-9, "max_frames": 16}).answer(clip, "Which colour?", OPTIONS)
    thin = tmp_path / "thin.mp4"  # 2 x 1,000 px: transformers' resize rule refuses the aspect ratio
    write_video(thin, (np.zeros((2, 1000, 3), np.uint8) for _ in range(8)), fps=4.0)
    with pytest.raises(at.UnsupportedInputError, match="1000 x 2 px cannot be resized"):
        pipe.answer(thin, "Which colour?", OPTIONS)
    state.check()


def test_decoders_and_devices_that_are_not_there(clip, monkeypatch):
    from adapttoken_plugin.loading import load_model
    from adapttoken_plugin.video import FrameReader

    with pytest.raises(at.ConfigError, match="backend='mpeg'"):
        FrameReader(clip, backend="mpeg")
    monkeypatch.setitem(sys.modules, "av", None)  # PyAV not installed
    with pytest.raises(at.ConfigError, match=r"adapttoken\[video\]"):
        FrameReader(clip, backend="pyav")
    for device in ("toaster", "cuda:99"):
        with pytest.raises(at.ConfigError, match="device"):
            load_model(None, device, "auto")
    with pytest.raises(at.ConfigError, match="float17"):
        load_model(None, "cpu", "float17")


def test_ablation_inputs(tmp_path):
    from adapttoken_plugin.ablation import Grid, annotation_items

    with pytest.raises(at.DatasetError, match="does not exist"):
        annotation_items(tmp_path / "none.jsonl")
    with pytest.raises(at.ConfigError, match="budget '1/0'"):
        Grid(("uniform",), budgets=("1/0",))
    # OutputInUseError: tests/test_ablation.py runs a second sweep on the folder of a running one


def test_calibration_inputs():
    from adapttoken_plugin.calibration import calibrate, theta_table

    with pytest.raises(at.CalibrationError, match="no calibration questions"):
        theta_table([])
    with pytest.raises(at.CalibrationError, match="at most 0.5"):  # stopping at group 1 of 2 skips half at most
        calibrate([[0.1, 0.2]], target_skip=0.75)
    with pytest.raises(at.ConfigError, match="target skip share"):
        calibrate([[0.1, 0.2]], target_skip=1.0)


def test_the_walk_covers_every_class():
    walked = {"ConfigError", "RegistryError", "UnsupportedModelError", "UnsupportedInputError", "NoVideoError",
              "OptionsRequiredError", "VideoReadError", "EmptyVideoError", "DatasetError", "OutputInUseError",
              "CalibrationError"}
    assert walked | RANK_ERRORS | {"AdaptTokenError"} == set(_error_classes())
