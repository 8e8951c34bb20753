"""The adapter contract, checked for every registered model family against the unmodified upstream class.

Tiny random-weight models (float32, sdpa) and real processors built in code (`fixtures/families.py`); what a
family's processor writes is read there independently of the plugin. For each family:
equivalence with the unmodified model at full budget, the final pass's sequence and positions,
recomputed attention scores against an eager reference, exact selection sizes, generate with and
without cache against a hand-written greedy loop, and `disable` restoring the model.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import pytest
import torch

import adapttoken_plugin as at
from adapttoken_plugin.adapters.base import ModelAdapter, adapter_for
from adapttoken_plugin.scoring import capture_scores
from adapttoken_plugin.stage import resolve_scoring_layer
from fixtures.families import (
    FAMILIES,
    FPS,
    QUESTION,
    Family,
    expected_columns,
    features,
    kept_encoder_outputs,
    token_string,
    tokenizer,
    unit_spans,
)

TOL = 1e-5
BUDGET = 3  # of 16 visual tokens in 4 units: at least one unit keeps nothing and is dropped with its text
FPS_STREAM = 4.0


@dataclass
class Setup:
    family: Family
    model: Any
    processor: Any

    def inputs(self) -> dict:
        return self.family.inputs(self.processor)

    @property
    def adapter(self) -> ModelAdapter:
        return adapter_for(self.model)

    def adapter_with(self, **kw: Any) -> ModelAdapter:
        """The adapter made with the position settings of `config(**kw)` (position_rule `transformers`)."""
        return adapter_for(self.model, self.config(**kw))

    def config(self, **kw: Any) -> at.AdaptTokenConfig:
        return at.AdaptTokenConfig(**{"selector": "adapttoken", "frames_per_group": self.family.frames_per_group,
                                      "position_rule": "transformers", **kw})

    def spans(self, inputs: dict):
        layout = self.adapter.split_inputs(dict(inputs))[1]
        return unit_spans(self.family, inputs["input_ids"][0], self.adapter.video_token_id, layout.tokens_per_unit), \
            layout.tokens_per_unit

    def reference_positions(self, inputs: dict) -> torch.Tensor | None:
        """The model's own M-RoPE positions (3, 1, L) of the full sequence; None for 1-D families."""
        if not self.family.mrope:
            return None
        extra = {k: inputs[k] for k in ("second_per_grid_ts",) if k in inputs}
        return self.model.model.get_rope_index(inputs["input_ids"], inputs["mm_token_type_ids"],
                                               video_grid_thw=inputs["video_grid_thw"], **extra)[0]


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def setup(request) -> Setup:
    family = FAMILIES[request.param]
    return Setup(family, family.model(), family.build_processor())


@pytest.fixture(autouse=True)
def _always_disable(request):
    yield
    if "setup" in request.fixturenames:
        at.disable(request.getfixturevalue("setup").model)


def _spy_forward(monkeypatch, model) -> list[dict]:
    """Record the keyword arguments of every class-level forward that receives encoder outputs
    (group passes and the final prefill; decoding steps get none)."""
    seen: list[dict] = []
    original = type(model).forward

    def spy(self, *args, **kw):
        if kw.get("mm_encoder_outputs") is not None:
            seen.append(dict(kw))
        return original(self, *args, **kw)

    monkeypatch.setattr(type(model), "forward", spy)
    return seen


def test_every_registered_adapter_has_a_family_entry():
    # adapters of this package; another distribution's (entry point) brings its own tests
    built_in = [n for n in at.ADAPTERS.names() if at.ADAPTERS.origin(n).startswith("adapttoken_plugin.adapters.")]
    assert sorted(built_in) == sorted(FAMILIES)
    for name, family in FAMILIES.items():
        assert type(adapter_for(family.build_model())).registry_name == name


def test_full_budget_equals_the_unmodified_model(setup):
    model = setup.model
    with torch.no_grad():
        ref_logits = model(**setup.inputs()).logits[0, -1]
    ref_tokens = model.generate(**setup.inputs(), max_new_tokens=5, do_sample=False)
    at.enable(model, setup.config(budget=10**6))
    with torch.no_grad():
        logits = model(**setup.inputs()).logits[0, -1]
    assert model.adapttoken_trace.kept_tokens == model.adapttoken_trace.total_tokens == 16
    assert (logits - ref_logits).abs().max() <= TOL
    assert torch.equal(model.generate(**setup.inputs(), max_new_tokens=5, do_sample=False), ref_tokens)


@pytest.mark.parametrize("kept", [[0, 1, 2, 3], [5, 6, 13], [14], [0, 15], list(range(4, 16))])
def test_kept_tokens_sit_at_their_full_sequence_positions(setup, kept):
    """Any subset: the units with kept tokens keep their text, the others are dropped with theirs;
    Qwen positions are the model's own get_rope_index columns, 1-D positions contiguous unless asked."""
    inputs = setup.inputs()
    spans, tpu = setup.spans(inputs)
    kept = torch.tensor(kept)
    cols = expected_columns(spans, inputs["input_ids"].shape[1], kept, tpu)
    adapter = setup.adapter
    prompt, layout, pixels = adapter.split_inputs(dict(inputs))
    feats = adapter.encode(adapter.unit_pixels(pixels, layout, torch.arange(layout.num_units)))[kept]
    for positions_1d in ("contiguous", "original"):
        built = setup.adapter_with(positions_1d=positions_1d).model_inputs(prompt, layout, kept, feats)
        assert torch.equal(built["input_ids"][0], inputs["input_ids"][0, cols])
        assert torch.equal(built["attention_mask"], torch.ones_like(built["input_ids"]))
        reference = setup.reference_positions(inputs)
        if reference is not None:
            assert torch.equal(built["position_ids"], reference[:, :, cols])
        elif positions_1d == "contiguous":
            assert built.get("position_ids") is None  # the model numbers 0, 1, 2, ... itself
        else:
            assert torch.equal(built["position_ids"], cols[None])  # gapped, with the attention mask
        placeholders = adapter.visual_columns(prompt, layout, kept)
        assert torch.equal(built["input_ids"][0, placeholders], torch.full((len(kept),), adapter.video_token_id))


@pytest.mark.parametrize("units", [[1, 3], [2], [0, 1, 2]])
def test_whole_kept_units_give_the_sequence_the_processor_writes_for_those_frames(setup, units):
    """Keeping every token of some units yields exactly the processor's output for those frames alone
    (timestamps from the original frame indices; InternVL keeps its original frame labels)."""
    from transformers.video_utils import VideoMetadata

    family, adapter = setup.family, setup.adapter
    prompt, layout, pixels = adapter.split_inputs(setup.inputs())
    kept = layout.token_ids_of_units(torch.tensor(units))
    feats = adapter.encode(adapter.unit_pixels(pixels, layout, torch.tensor(units)))
    built = setup.adapter_with().model_inputs(prompt, layout, kept, feats)["input_ids"][0]

    frames = [u * family.frames_per_unit + f for u in units for f in range(family.frames_per_unit)]
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUESTION}]}]
    text = setup.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    metadata = VideoMetadata(total_num_frames=family.frames, fps=FPS, frames_indices=frames)
    alone = setup.processor(text=[text], videos=[family.video()[frames]], return_tensors="pt", do_sample_frames=False,
                            video_metadata=[metadata], **family.processor_kwargs)["input_ids"][0]
    relabel = {f"Frame{i + 1}:": f"Frame{u + 1}:" for i, u in enumerate(units)}
    written = re.sub(r"Frame\d+:", lambda m: relabel[m.group(0)], token_string(alone))
    assert token_string(built) == written


@pytest.mark.parametrize("mutate,error", [
    (lambda d, vid: d.update(input_ids=d["input_ids"].repeat(2, 1)), at.UnsupportedInputError),
    (lambda d, vid: d.update(input_ids=torch.where(d["input_ids"] == vid, 50, d["input_ids"])), at.NoVideoError),
    (lambda d, vid: d.update(attention_mask=torch.cat([torch.zeros(1, 1, dtype=torch.long),
                                                       d["attention_mask"][:, 1:]], 1)), at.UnsupportedInputError),
    (lambda d, vid: d.update(input_ids=torch.cat([d["input_ids"][:, :-3], torch.full((1, 1), vid),
                                                  d["input_ids"][:, -3:]], 1),
                             attention_mask=torch.ones(1, d["input_ids"].shape[1] + 1, dtype=torch.long)),
     at.UnsupportedInputError),
])
def test_bad_inputs_raise_clear_errors(setup, mutate, error):
    """One unpadded prompt with the processor's placeholders, or a clear error (never an unselected run)."""
    at.enable(setup.model, setup.config(budget=BUDGET))
    bad = setup.inputs()
    mutate(bad, setup.adapter.video_token_id)
    with pytest.raises(error):
        setup.model.generate(**bad, max_new_tokens=1)


def test_final_pass_holds_exactly_the_budget_at_full_sequence_positions(setup, monkeypatch):
    model, inputs = setup.model, setup.inputs()
    seen = _spy_forward(monkeypatch, model)
    at.enable(model, setup.config(budget=BUDGET))
    model.generate(**setup.inputs(), max_new_tokens=2, do_sample=False)
    trace = model.adapttoken_trace
    vid = setup.adapter.video_token_id
    group_calls, final = seen[:-1], seen[-1]
    assert [int((c["input_ids"] == vid).sum()) for c in group_calls] == [g.num_tokens + setup.family.trailing
                                                                         for g in trace.groups]
    assert int((final["input_ids"] == vid).sum()) == BUDGET + setup.family.trailing
    kept = torch.tensor(trace.kept_token_ids)
    spans, tpu = setup.spans(inputs)
    cols = expected_columns(spans, inputs["input_ids"].shape[1], kept, tpu)
    assert len(torch.unique(kept // tpu)) < 4  # some unit was dropped whole
    assert torch.equal(final["input_ids"][0], inputs["input_ids"][0, cols])
    reference = setup.reference_positions(inputs)
    if reference is None:
        assert final.get("position_ids") is None
    else:
        assert torch.equal(final["position_ids"], reference[:, :, cols])


ONE_DIM = [name for name in sorted(FAMILIES) if not FAMILIES[name].mrope]  # 3-D M-RoPE keeps original positions


@pytest.mark.parametrize("setup", ONE_DIM, indirect=True)
def test_original_1d_positions_are_gapped_and_sent_with_the_mask(setup, monkeypatch):
    model, inputs = setup.model, setup.inputs()
    seen = _spy_forward(monkeypatch, model)
    at.enable(model, setup.config(budget=BUDGET, positions_1d="original"))
    model.generate(**setup.inputs(), max_new_tokens=3, do_sample=False)
    spans, tpu = setup.spans(inputs)
    cols = expected_columns(spans, inputs["input_ids"].shape[1], torch.tensor(model.adapttoken_trace.kept_token_ids),
                            tpu)
    assert torch.equal(seen[-1]["position_ids"], cols[None]) and bool(torch.diff(cols).gt(1).any())
    assert torch.equal(seen[-1]["attention_mask"], torch.ones_like(seen[-1]["input_ids"]))
    gapped = model(**setup.inputs()).logits[0, -1]
    at.enable(model, setup.config(budget=BUDGET))
    assert (model(**setup.inputs()).logits[0, -1] - gapped).abs().max() > 1e-4  # the positions matter
    with pytest.raises(at.ConfigError, match="positions_1d"):
        setup.config(positions_1d="gapped")


@pytest.mark.parametrize("setup,positions_1d", [(name, "contiguous") for name in sorted(FAMILIES)]
                         + [(name, "original") for name in ONE_DIM], indirect=["setup"])
@pytest.mark.parametrize("use_cache", [True, False])
def test_small_budget_generate_equals_an_independent_greedy_loop(setup, use_cache, positions_1d):
    model, inputs = setup.model, setup.inputs()
    at.enable(model, setup.config(budget=BUDGET, positions_1d=positions_1d))
    out = model.generate(**setup.inputs(), max_new_tokens=4, do_sample=False, use_cache=use_cache)
    kept = torch.tensor(model.adapttoken_trace.kept_token_ids)
    at.disable(model)
    n = inputs["input_ids"].shape[1]
    assert torch.equal(out[:, :n], inputs["input_ids"]) and out.shape[1] == n + 4

    # The final pass built by hand from the processor's inputs: kept columns, the model's own
    # features of those tokens, its own positions (1-D: none, or the kept columns themselves);
    # the whole sequence re-run each step, no cache, positions extended by one per token.
    spans, tpu = setup.spans(inputs)
    cols = expected_columns(spans, n, kept, tpu)
    encoded = kept_encoder_outputs(setup.family, features(setup.family, model, inputs), kept)
    ids = inputs["input_ids"][:, cols]
    reference = setup.reference_positions(inputs)
    positions = reference[:, :, cols] if reference is not None else cols[None] if positions_1d == "original" else None
    generated = []
    for _ in range(4):
        extra = {} if positions is None else {"position_ids": positions}
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False,
                           mm_encoder_outputs=encoded, **extra).logits[0, -1]
        token = int(logits.argmax())
        generated.append(token)
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        if positions is not None:
            positions = torch.cat([positions, positions[..., -1:] + 1], dim=-1)
    assert out[0, n:].tolist() == generated


@pytest.mark.parametrize("chunk_rows", [None, 1, 7])
@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_recomputed_scores_equal_eager_attention(setup, reduce, chunk_rows):
    """The scoring hook's rows against eager attention, with the query rows reduced in chunks of one, seven
    or all of them at once (None: the default chunk holds every row of these short questions)."""
    model, adapter = setup.model, setup.adapter
    prompt, layout, pixels = adapter.split_inputs(setup.inputs())
    units = torch.tensor([1, 3])
    token_ids = layout.token_ids_of_units(units)
    with torch.no_grad():
        feats = adapter.encode(adapter.unit_pixels(pixels, layout, units))
    group_inputs = adapter.model_inputs(prompt, layout, token_ids, feats)  # position_rule "original"
    ids = group_inputs["input_ids"][0]
    columns = (ids == adapter.video_token_id).nonzero().flatten()[:len(token_ids)]  # never the trailing newline
    assert torch.equal(adapter.visual_columns(prompt, layout, token_ids), columns)
    n_query = len(prompt.suffix_ids)  # the text after the video: after the last unit's closing token
    closing = setup.family.trailing + (len(prompt.unit_tails[-1]) if prompt.unit_tails else 0)
    assert n_query == len(ids) - (int(columns[-1]) + 1 + closing)
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = eager(**group_inputs, output_attentions=True).attentions
    layers = sorted({0, resolve_scoring_layer(adapter, setup.config())})
    for layer in layers:
        with torch.no_grad(), capture_scores(adapter, layer, n_query, columns, reduce, len(ids),
                                             chunk_rows) as capture:
            model(**group_inputs)
        rows = attentions[layer][0, :, -n_query:, columns]
        expected = rows.amax(dim=(0, 1)) if reduce == "max" else rows.mean(dim=(0, 1))
        assert capture.scores.shape == (len(token_ids),)
        assert (capture.scores - expected).abs().max() <= TOL, layer
    assert model.config.get_text_config()._attn_implementation == "sdpa"


def test_no_call_computes_logits_for_more_than_the_last_position(setup):
    """Group passes ask for the last position's logits only, and the final `generate` must too: it
    passes `logits_to_keep=1` only to a `forward` whose signature takes it (so the wrapper keeps it)."""
    model = setup.model
    rows: list[int] = []
    handle = model.get_output_embeddings().register_forward_hook(lambda m, args, out: rows.append(args[0].shape[1]))
    try:
        at.enable(model, setup.config(budget=BUDGET))
        model.generate(**setup.inputs(), max_new_tokens=2, do_sample=False)
    finally:
        handle.remove()
    assert len(rows) > 2 and set(rows) == {1}, rows


def test_disable_restores_the_model_exactly(setup):
    model = setup.model
    fresh = setup.family.model()
    with torch.no_grad():  # transformers installs its own output-capturing hooks on a model's first forward
        model(**setup.inputs())
    before = set(model.__dict__)
    hooks_before = sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())
    at.enable(model, setup.config(budget=BUDGET))
    model.generate(**setup.inputs(), max_new_tokens=2, do_sample=False)
    assert at.is_enabled(model)
    at.disable(model)
    assert set(model.__dict__) == before and not at.is_enabled(model)
    assert sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules()) == hooks_before
    assert "generate" not in model.__dict__ and "forward" not in model.__dict__
    with torch.no_grad():
        assert torch.equal(model(**setup.inputs()).logits, fresh(**setup.inputs()).logits)
    assert torch.equal(model.generate(**setup.inputs(), max_new_tokens=3, do_sample=False),
                       fresh.generate(**setup.inputs(), max_new_tokens=3, do_sample=False))


def test_calls_without_a_video_pass_through(setup):
    model = setup.model
    ids = tokenizer()("<|im_start|>user\nHi<|im_end|>\n", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        ref = model(ids, attention_mask=torch.ones_like(ids)).logits
    at.enable(model, setup.config(budget=BUDGET))
    with torch.no_grad():
        assert torch.equal(model(ids, attention_mask=torch.ones_like(ids)).logits, ref)
    assert torch.equal(model.generate(ids, max_new_tokens=2, do_sample=False),
                       type(model).generate(model, ids, max_new_tokens=2, do_sample=False))
    assert model.adapttoken_trace is None


def test_streaming_pipeline_equals_the_unmodified_model(setup, tmp_path):
    from transformers.video_utils import VideoMetadata

    from adapttoken_plugin.pipeline import Pipeline, format_question
    from adapttoken_plugin.video import FrameReader, sample_frame_indices, write_video

    model, processor, family = setup.model, setup.processor, setup.family
    config = setup.config(budget=10**6, fps=FPS_STREAM, max_frames=16)
    path = tmp_path / "clip.mp4"
    write_video(path, family.video(seed=1), fps=FPS_STREAM)
    pipe = Pipeline(model, processor, config, backend="pyav")
    answer = pipe.answer(path, "Which colour?", ["red", "blue"], max_new_tokens=3)

    # the same frames, decoded at the same size, through the processor in one piece, told the file's
    # frame rate and the frames' file indices as when it samples the file itself
    with FrameReader(path, backend="pyav") as probe:
        info = probe.info
    indices = sample_frame_indices(info, FPS_STREAM, 16, multiple_of=family.frames_per_unit)
    size = pipe.adapter.frame_size(processor, info.height, info.width, None, len(indices))
    with FrameReader(path, backend="pyav", size=size) as reader:
        frames = reader.read(indices.tolist())
    question = format_question("Which colour?", ["red", "blue"])
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    metadata = VideoMetadata(total_num_frames=info.num_frames, fps=info.fps, frames_indices=indices.tolist())
    inputs = processor(text=[text], videos=[frames], return_tensors="pt", do_sample_frames=False,
                       video_metadata=[metadata], **family.processor_kwargs)
    # what the pipeline builds from decoded frames is what split_inputs reads from the processor's output
    adapter = pipe.adapter
    sampled_fps = min(FPS_STREAM, len(indices) / info.duration)
    streamed = adapter.layout_for_frames(len(indices), *size, sampled_fps, tuple(indices.tolist()))
    prompt_from_processor, from_processor, pixels = adapter.split_inputs(dict(inputs))
    assert dataclasses.replace(streamed, frame_indices=None) == from_processor
    assert answer.trace.kept_tokens == answer.trace.total_tokens == from_processor.num_tokens
    # the decode size is the processor's own resize rule: given the native frames it makes the same grid
    with FrameReader(path, backend="pyav") as reader:
        native = reader.read(indices.tolist())
    resized = processor(text=[text], videos=[native], return_tensors="pt", do_sample_frames=False,
                        video_metadata=[metadata])
    assert adapter.split_inputs(dict(resized))[1] == from_processor
    assert torch.equal(adapter.frames_to_pixels(processor, frames)[adapter.video_input_key], pixels)
    with pipe.open_video(path) as session:
        prompt = pipe.prompt_parts(question, session)
    for name in ("prefix_ids", "suffix_ids"):
        assert torch.equal(getattr(prompt, name), getattr(prompt_from_processor, name)), name
    for name in ("unit_heads", "unit_tails"):
        streamed_text, processor_text = getattr(prompt, name), getattr(prompt_from_processor, name)
        assert (streamed_text is None) == (processor_text is None), name
        assert streamed_text is None or [t.tolist() for t in streamed_text] == [t.tolist() for t in processor_text]
    reference = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert answer.text == processor.tokenizer.decode(reference[0, inputs["input_ids"].shape[1]:],
                                                     skip_special_tokens=True).strip()
    small = Pipeline(model, processor, config.replace(budget=BUDGET), backend="pyav").answer(path, "Which colour?")
    assert small.trace.kept_tokens == BUDGET
