"""The scoring hook's memory is bounded by a chunk of query rows, not by the question's length.

A 100,000-character question used to make the hook allocate float32 logits (heads, question tokens, sequence)
at once (160 GB on the toy model). The rows are now computed and reduced a chunk at a time; the chunks give
the scores of one piece (a max of maxima, a sum of sums: equal up to float rounding).
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import adapttoken_plugin as at
from adapttoken_plugin.adapters.base import adapter_for
from adapttoken_plugin.scoring import capture_scores, query_chunk_rows
from fixtures.tiny import qwen2_5_vl, qwen_video_inputs

QUESTION_TOKENS = 600


class LargestTensor(TorchDispatchMode):
    """Records the largest tensor (elements) any torch operation returns while active."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.fixture(scope="module")
def long_question():
    """The tiny Qwen2.5-VL, its adapter and a group prefill's inputs whose question is 600 tokens long."""
    model = qwen2_5_vl()
    adapter = adapter_for(model)
    suffix = tuple(20 + i % 200 for i in range(QUESTION_TOKENS))
    prompt, layout, pixels = adapter.split_inputs(qwen_video_inputs(units=4, suffix=suffix))
    token_ids = layout.token_ids_of_units(torch.tensor([0, 2]))
    with torch.no_grad():
        features = adapter.encode(adapter.unit_pixels(pixels, layout, torch.tensor([0, 2])))
    inputs = adapter.model_inputs(prompt, layout, token_ids, features)
    return model, adapter, inputs, adapter.visual_columns(prompt, layout, token_ids)


def _scores(long_question, reduce, chunk_rows, recorder=None):
    """Scores of one prefill; with `recorder`, it is active during the scoring hook only (not the model's own
    attention): pre-hooks run in the order registered, so one enters it before the hook and one leaves after."""
    model, adapter, inputs, columns = long_question
    attn = adapter.attention_module(1)
    length = inputs["input_ids"].shape[1]
    handles = []

    def enter(*_):
        recorder.__enter__()

    def leave(*_):
        recorder.__exit__(None, None, None)

    if recorder is not None:
        handles.append(attn.register_forward_pre_hook(enter))
    with capture_scores(adapter, 1, QUESTION_TOKENS, columns, reduce, length, chunk_rows) as capture:
        if recorder is not None:
            handles.append(attn.register_forward_pre_hook(leave))
        with torch.no_grad():
            model(**inputs)
    for handle in handles:
        handle.remove()
    return capture.scores


def test_the_scoring_hook_holds_one_chunk_of_rows_at_a_time(long_question):
    model, _, inputs, _ = long_question
    length = inputs["input_ids"].shape[1]
    text = model.config.get_text_config()
    heads, chunk = text.num_attention_heads, 8
    recorder = LargestTensor()
    _scores(long_question, "max", chunk, recorder)
    whole = heads * QUESTION_TOKENS * length  # the logits of every query row at once, as before
    bound = max(heads * chunk * length, length * text.hidden_size)  # one chunk's logits, or a layer input
    assert 0 < recorder.largest <= bound < whole / 10, (recorder.largest, bound, whole)


@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_chunks_of_any_size_give_the_scores_of_one_piece(long_question, reduce):
    whole = _scores(long_question, reduce, QUESTION_TOKENS)
    for rows in (1, 7, None):
        # a one-row product may round differently from a many-row one (another BLAS kernel): not bitwise
        torch.testing.assert_close(_scores(long_question, reduce, rows), whole, rtol=1e-5, atol=1e-7, msg=str(rows))


def test_the_default_chunk_is_bounded_in_bytes():
    assert query_chunk_rows(heads=28, length=100_000) * 4 * 28 * 100_000 <= 64 * 2**20
    assert query_chunk_rows(heads=28, length=10**9) == 1  # never fewer than one row


def test_a_long_question_through_the_enabled_model_leaves_it_untouched(long_question):
    """The selection runs end to end on a long question, and disable gives the model back exactly."""
    model = qwen2_5_vl()
    suffix = tuple(20 + i % 200 for i in range(QUESTION_TOKENS))
    inputs = qwen_video_inputs(units=4, suffix=suffix)
    with torch.no_grad():
        before = model(**qwen_video_inputs(units=4, suffix=suffix)).logits
    at.enable(model, {"budget": 6, "frames_per_group": 4, "scoring_layer": 1})
    with torch.no_grad():
        model.generate(**inputs, max_new_tokens=2, do_sample=False)
    assert model.adapttoken_trace.kept_tokens == 6
    at.disable(model)
    with torch.no_grad():
        assert torch.equal(model(**qwen_video_inputs(units=4, suffix=suffix)).logits, before)


def test_the_hook_leaves_the_scores_on_the_layers_device():
    """No copy to the host inside the forward (on a GPU it would wait there for every queued kernel, and charge
    the wait to scoring): run on the `meta` device, where any copy out raises, the scores stay where the layer
    computes. The stage moves them to the CPU once the forward has ended."""
    model = qwen2_5_vl()
    adapter = adapter_for(model)
    attn = adapter.attention_module(1)
    model.to("meta")
    length = 20
    hidden = torch.randn(1, length, model.config.get_text_config().hidden_size, device="meta")
    positions = torch.zeros(3, 1, length, dtype=torch.long, device="meta")
    cos, sin = model.model.language_model.rotary_emb(hidden, positions)
    for reduce in ("max", "mean"):
        with torch.no_grad(), capture_scores(adapter, 1, 5, slice(3, 11), reduce, length) as capture:
            attn(hidden_states=hidden, position_embeddings=(cos, sin), attention_mask=None)
        assert capture.scores.device.type == "meta" and capture.scores.shape == (8,)
