"""accelerate-dispatched models (`device_map="auto"`, the one-process fallback for big backbones): the
selector stage runs through accelerate's per-instance hooks, with parts of the model offloaded (their
weights on `meta` between calls), and gives what it gives on the same model loaded whole."""

from __future__ import annotations

import pytest
import torch
from accelerate import dispatch_model
from transformers import Qwen2_5_VLForConditionalGeneration

import adapttoken_plugin as at
from fixtures.tiny import qwen2_5_vl, qwen_video_inputs

CONFIG = dict(selector="adapttoken", budget=12, frames_per_group=4, scoring_layer=1)


def run(model):
    at.enable(model, CONFIG)
    with torch.no_grad():
        answer = model.generate(**qwen_video_inputs(), max_new_tokens=6, do_sample=False)
        trace = model.adapttoken_trace
        logits = model(**qwen_video_inputs()).logits
    at.disable(model)
    return answer, trace.kept_token_ids, torch.tensor([g.entropy for g in trace.groups]), logits


def dispatched(tmp_path):
    """Layers 1 and 2 (the scoring layer among them) offloaded to disk, the rest on the CPU."""
    device_map = {"model.visual": "cpu", "model.language_model.embed_tokens": "cpu",
                  "model.language_model.layers.0": "cpu", "model.language_model.layers.1": "disk",
                  "model.language_model.layers.2": "disk", "model.language_model.norm": "cpu",
                  "model.language_model.rotary_emb": "cpu", "lm_head": "cpu"}
    return dispatch_model(qwen2_5_vl(num_layers=3), device_map, offload_dir=str(tmp_path / "offload"),
                          force_hooks=True)


def auto(tmp_path):
    """`from_pretrained(device_map="auto")` with room in memory for half the weights: the rest goes to disk."""
    model = qwen2_5_vl(num_layers=3)
    model.save_pretrained(tmp_path / "tiny")
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    loaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        tmp_path / "tiny", device_map="auto", max_memory={"cpu": size // 2}, offload_folder=str(tmp_path / "off"))
    loaded.set_attn_implementation("sdpa")
    return loaded.eval()


@pytest.mark.parametrize("load", [dispatched, auto])
def test_selection_through_accelerate_hooks_equals_the_whole_model(tmp_path, load):
    reference = run(qwen2_5_vl(num_layers=3))
    model = load(tmp_path)
    assert any(p.device.type == "meta" for p in model.parameters())  # really offloaded: hooks load the weights
    hooks = {name: model.__dict__.get(name) for name in ("forward", "generate")}
    answer, kept, entropies, logits = run(model)
    assert {name: model.__dict__.get(name) for name in hooks} == hooks  # accelerate's own bindings are back
    assert 0 < len(kept) < 32 and kept == reference[1]
    torch.testing.assert_close(entropies, reference[2], rtol=0, atol=1e-5)
    torch.testing.assert_close(logits, reference[3], rtol=0, atol=1e-5)
    assert torch.equal(answer, reference[0])
