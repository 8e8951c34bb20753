"""The unchanged user call: `model.generate(**processor(text=..., videos=...))` with a real processor."""

import numpy as np
import pytest
import torch

import adapttoken_plugin as at
from adapttoken_plugin.toy import toy_model, toy_processor


@pytest.fixture(scope="module")
def setup():
    processor = toy_processor()
    model = toy_model()
    frames = np.random.default_rng(0).integers(0, 255, (16, 84, 112, 3), dtype=np.uint8)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return model, processor, frames, text


def _inputs(processor, frames, text):
    return processor(text=[text], videos=[frames], return_tensors="pt", do_sample_frames=False,
                     cap_pixels_per_frame=False)


def test_processor_inputs_full_budget_equal_the_unmodified_model(setup):
    model, processor, frames, text = setup
    ref = model.generate(**_inputs(processor, frames, text), max_new_tokens=5, do_sample=False)
    ref_logits = model(**_inputs(processor, frames, text)).logits[0, -1]
    at.enable(model, at.AdaptTokenConfig(budget=10**6, frames_per_group=4, position_rule="transformers"))
    try:
        out = model.generate(**_inputs(processor, frames, text), max_new_tokens=5, do_sample=False)
        logits = model(**_inputs(processor, frames, text)).logits[0, -1]
    finally:
        at.disable(model)
    assert torch.equal(out, ref)
    assert (logits - ref_logits).abs().max() <= 1e-5


def test_processor_inputs_small_budget_returns_the_callers_prompt_plus_answer(setup):
    model, processor, frames, text = setup
    inputs = _inputs(processor, frames, text)
    at.enable(model, at.AdaptTokenConfig(budget=20, frames_per_group=4))
    try:
        out = model.generate(**_inputs(processor, frames, text), max_new_tokens=3, do_sample=False)
        trace = model.adapttoken_trace
    finally:
        at.disable(model)
    n = inputs["input_ids"].shape[1]
    assert torch.equal(out[:, :n], inputs["input_ids"]) and out.shape[1] == n + 3
    assert trace.kept_tokens == 20
    assert trace.total_tokens == int((inputs["input_ids"] == model.config.video_token_id).sum())
    assert len(trace.groups) == 4 and all(g.visited for g in trace.groups)
    assert sum(g.kept for g in trace.groups) == 20
