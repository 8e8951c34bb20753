"""Seconds per stage that are true on a GPU: the stage clock synchronises the model's CUDA devices when
`sync_timing` asks for it, at every stage's clock reading, and never otherwise (nor on a CPU model).

No GPU is needed: `torch.cuda.synchronize` is replaced by a recorder, and the model's CUDA devices are faked
where the test says so (the tiny model itself computes on the CPU).
"""

from __future__ import annotations

import sys

import pytest
import torch

import adapttoken_plugin as at
import adapttoken_plugin.timing as timing
from adapttoken_plugin.timing import StageClock, cuda_devices
from fixtures.tiny import qwen2_5_vl, qwen_video_inputs


@pytest.fixture
def synchronised(monkeypatch):
    """The devices `torch.cuda.synchronize` was called with, and the function that read the clock each time."""
    calls: list[tuple[torch.device, str]] = []

    def record(device=None):
        calls.append((device, sys._getframe(2).f_code.co_name))  # 0: record, 1: StageClock.now, 2: its caller

    monkeypatch.setattr(torch.cuda, "synchronize", record)
    return calls


def test_the_clock_synchronises_exactly_when_asked_and_only_cuda_devices(synchronised):
    two = [torch.device("cuda", 0), torch.device("cpu"), torch.device("cuda", 1)]
    StageClock(two, sync=False).now()
    StageClock([torch.device("cpu")], sync=True).now()
    StageClock(sync=True).now()
    assert synchronised == []
    StageClock(two, sync=True).now()
    assert [device for device, _ in synchronised] == [torch.device("cuda", 0), torch.device("cuda", 1)]
    assert not StageClock([torch.device("cpu")], sync=True).sync


def test_a_cpu_model_has_no_cuda_device():
    assert cuda_devices(qwen2_5_vl()) == ()


def _generate(model, **settings):
    at.enable(model, {"budget": 6, "frames_per_group": 4, "scoring_layer": 1, **settings})
    try:
        with torch.no_grad():
            model.generate(**qwen_video_inputs(units=4), max_new_tokens=2, do_sample=False)
        return model.adapttoken_trace
    finally:
        at.disable(model)


def test_sync_timing_synchronises_at_every_stage_timer(synchronised, monkeypatch):
    """On a (faked) CUDA model both readings of every timer of a selection synchronise: per group pass the
    decode, vision and prefill timers and the scoring hook inside the forward, then the allocation and the final
    pass."""
    monkeypatch.setattr(timing, "cuda_devices", lambda model: (torch.device("cuda", 0),))
    trace = _generate(qwen2_5_vl(), sync_timing=True)
    groups = trace.groups_visited
    assert groups == 2
    counts = {caller: [c for _, c in synchronised].count(caller) for _, caller in synchronised}
    assert counts == {"_group_pass": 2 * 3 * groups, "hook": 2 * groups, "finish": 2, "_selected_call": 2}
    assert {device for device, _ in synchronised} == {torch.device("cuda", 0)}


def test_without_sync_timing_nothing_synchronises(synchronised, monkeypatch):
    monkeypatch.setattr(timing, "cuda_devices", lambda model: (torch.device("cuda", 0),))
    _generate(qwen2_5_vl())
    assert synchronised == []


def test_sync_timing_on_a_cpu_model_synchronises_nothing_and_changes_no_selection(synchronised):
    model = qwen2_5_vl()
    plain, timed = _generate(model), _generate(model, sync_timing=True)
    assert synchronised == []
    assert timed.kept_token_ids == plain.kept_token_ids and timed.kept_tokens == 6
    assert set(timed.seconds) == set(plain.seconds) and timed.seconds["prefill"] > 0
