"""The feature store's copies: pinned and non-blocking from a GPU to the CPU, and the selector stage waits for
them before anything reads the stored features.

Without a GPU the device-to-host branch is reached by faking the source device; a copy that completes only
at `PendingCopies.wait()` (NaN until then) stands for a non-blocking copy still in flight. The test marked
`cuda` checks the real pinned copy where a GPU is present.
"""

from __future__ import annotations

import pytest
import torch

import adapttoken_plugin as at
import adapttoken_plugin.stage as stage_module
import adapttoken_plugin.transfer as transfer
from adapttoken_plugin.transfer import PendingCopies, copy_to_store
from fixtures.tiny import qwen2_5_vl, qwen_video_inputs


def test_a_cpu_tensor_is_stored_as_it_is_with_nothing_pending():
    x = torch.randn(5, 3)
    pending = PendingCopies()
    out = copy_to_store(x, "cpu", pending)
    assert out is x and len(pending) == 0
    half = copy_to_store(x, "cpu", pending).to(torch.float16)  # any other move is the ordinary `.to`
    assert torch.equal(copy_to_store(half, torch.device("cpu"), pending), half) and len(pending) == 0


def test_a_gpu_to_cpu_copy_goes_to_pinned_memory_and_is_recorded(monkeypatch):
    """The branch a CUDA source takes, on the CPU: a pinned buffer is asked for, filled, and an event recorded."""
    allocations, events = [], []
    real_empty = torch.empty

    def empty(*shape, **kwargs):
        allocations.append(kwargs.get("pin_memory", False))
        return real_empty(*shape, **{k: v for k, v in kwargs.items() if k != "pin_memory"})

    monkeypatch.setattr(transfer, "needs_pinned_copy", lambda source, store: True)
    monkeypatch.setattr(torch, "empty", empty)
    monkeypatch.setattr(PendingCopies, "record", lambda self, device: events.append(device))
    x = torch.randn(4, 6, dtype=torch.bfloat16)
    out = copy_to_store(x, "cpu", PendingCopies())
    assert allocations == [True] and events == [x.device]
    assert out is not x and out.dtype == x.dtype and torch.equal(out, x)


def test_only_device_to_host_copies_are_pinned():
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert transfer.needs_pinned_copy(gpu, cpu)
    assert not transfer.needs_pinned_copy(cpu, cpu) and not transfer.needs_pinned_copy(cpu, gpu)
    assert not transfer.needs_pinned_copy(gpu, gpu) and not transfer.needs_pinned_copy(torch.device("meta"), cpu)


@pytest.fixture
def late_copies(monkeypatch):
    """Call it to make every store copy of the stage read NaN until `PendingCopies.wait()` completes it (as a
    non-blocking copy whose event has not fired)."""
    in_flight: list[tuple[torch.Tensor, torch.Tensor]] = []
    real_wait = PendingCopies.wait

    def late_copy(tensor, store, pending):
        out = torch.full(tensor.shape, float("nan"), dtype=tensor.dtype, device=store)
        in_flight.append((out, tensor.clone()))
        return out

    def wait(self):
        for out, source in in_flight:
            out.copy_(source)
        in_flight.clear()
        real_wait(self)

    def install():
        monkeypatch.setattr(stage_module, "copy_to_store", late_copy)
        monkeypatch.setattr(PendingCopies, "wait", wait)

    return install


def _stage(selector: str):
    model = qwen2_5_vl()
    adapter = at.adapter_for(model)
    config = at.AdaptTokenConfig(selector=selector, budget=6, frames_per_group=4, scoring_layer=1)
    prompt, layout, pixels = adapter.split_inputs(qwen_video_inputs(units=8))
    query = at.Query(prompt, layout, lambda units: adapter.unit_pixels(pixels, layout, units))
    return at.Stage(model, adapter, config, warn=False), query


def _select(selector: str, on_group=None):
    stage, query = _stage(selector)
    with torch.no_grad():
        return stage.run(query, on_group)


@pytest.mark.parametrize("selector", ["adapttoken", "attention-topk"])
def test_the_stage_reads_stored_features_only_once_their_copies_are_complete(selector, late_copies):
    """`adapttoken` reads the candidates' features to de-duplicate; `attention-topk` bounds the store after each
    pass (copying the newest group's candidates too); both hand the kept tokens' features to the final pass."""
    reference = _select(selector)
    late_copies()
    seen = []
    result = _select(selector, on_group=lambda group, n: seen.append(bool(group.candidate_features.isnan().any())))
    assert seen == [False] * len(result.trace.groups)
    assert torch.equal(result.token_ids, reference.token_ids)
    assert not result.features.isnan().any() and torch.equal(result.features, reference.features)


def test_evidence_is_returned_only_once_its_copies_are_complete(late_copies):
    """Evidence kept for other budgets (no bounding, no callback: nothing else waits) holds complete features."""
    stage, query = _stage("adapttoken")
    with torch.no_grad():
        reference = stage.collect_evidence(query)
        late_copies()
        evidence = stage.collect_evidence(query)
    assert len(evidence.visited) == len(reference.visited) == 4
    for group, expected in zip(evidence.visited, reference.visited):
        assert torch.equal(group.candidate_features, expected.candidate_features)


def test_the_video_features_are_joined_only_once_their_copies_are_complete(late_copies):
    stage, query = _stage("divprune")  # a selector that reads every token's features
    with torch.no_grad():
        reference = stage.encode_video(query)
        late_copies()
        assert torch.equal(stage.encode_video(query), reference)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_real_gpu_copy_is_pinned_and_complete_after_wait():
    x = torch.randn(1000, 64, device="cuda", dtype=torch.bfloat16)
    pending = PendingCopies()
    out = copy_to_store(x, "cpu", pending)
    assert out.is_pinned() and len(pending) == 1
    pending.wait()
    assert len(pending) == 0 and torch.equal(out, x.cpu())
