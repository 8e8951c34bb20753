"""The streaming pipeline's byte-bounded cache, its decoding order, and the background decoder (`video_cache`).

A fake reader stands in for the video decoder: frame i of the file is filled with i % 251, and every
read is recorded, so the tests see exactly which frames were decoded and when.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from adapttoken_plugin.errors import VideoReadError
from adapttoken_plugin.layout import interleaved_groups
from adapttoken_plugin.video_cache import (
    ByteBudgetCache,
    DecodePlan,
    DiskFrames,
    FeatureCachingAdapter,
    FrameSource,
    UnitPixels,
    group_read_cost,
    plan_decoding,
)

SHAPE = (4, 6, 3)
FRAME_BYTES = 4 * 6 * 3
FPU = 2  # frames per unit


class FakeReader:
    """Frames whose pixels say their file index; records every read."""

    backend, backend_version, device = "fake", "0", "cpu"

    def __init__(self, fail_at: int | None = None) -> None:
        self.reads: list[list[int]] = []
        self.fail_at = fail_at
        self.closed = False

    def read(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices)
        if self.fail_at is not None and self.fail_at in indices:
            raise VideoReadError(f"frame {self.fail_at} could not be decoded")
        self.reads.append(indices.tolist())
        return np.broadcast_to((indices % 251).astype(np.uint8)[:, None, None, None], (len(indices), *SHAPE)).copy()

    def close(self) -> None:
        self.closed = True


def positions_of(units) -> np.ndarray:
    units = np.asarray(units)
    return (units[:, None] * FPU + np.arange(FPU)[None, :]).ravel()


def source_for(groups, store="memory", may_stop_early=False, budget=10**9, decode_ahead=True, cap=None,
               reader=None, disk=None):
    reader = reader or FakeReader()
    indices = np.arange(sum(len(g) for g in groups) * FPU) * 3  # every third frame of the file
    plan = plan_decoding(groups, FPU, FRAME_BYTES, may_stop_early, cap) if store != "off" else DecodePlan.empty()
    cache = ByteBudgetCache(budget)
    source = FrameSource(lambda: reader, indices, SHAPE, store, cache, "video", plan, decode_ahead, disk)
    return source, reader, cache, indices


def decoded(reader: FakeReader) -> list[int]:
    return [i for read in reader.reads for i in read]


def wait_for(condition, timeout=10.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


# --------------------------------------------------------------------------------------------------
# ByteBudgetCache


def test_cache_evicts_the_least_recently_used_and_never_holds_more_than_its_budget():
    cache = ByteBudgetCache(100)
    for key in "abcd":
        assert cache.put(key, key.upper(), 30)
    assert "a" not in cache and cache.bytes == 90  # a went to make room for d
    assert cache.get("b") == "B"  # b is now the most recently used
    assert cache.put("e", "E", 30)
    assert "c" not in cache and "b" in cache
    assert not cache.put("huge", "H", 101) and "huge" not in cache  # larger than the whole budget
    assert cache.peak_bytes <= 100


def test_pinned_values_are_not_evicted_and_a_waiting_put_gets_room_once_they_are_unpinned():
    cache = ByteBudgetCache(100)
    assert cache.put("a", 1, 60, pinned=True)
    assert not cache.put("b", 2, 60)  # only pinned values could make room
    got = []
    waiter = threading.Thread(target=lambda: got.append(cache.put("b", 2, 60, pinned=True, wait=lambda: True)))
    waiter.start()
    time.sleep(0.1)
    assert waiter.is_alive() and "b" not in cache
    assert cache.get("a", unpin=True) == 1
    waiter.join(5)
    assert got == [True] and "a" not in cache and cache.get("b") == 2
    assert cache.peak_bytes == 60
    assert not cache.put("c", 3, 60, wait=lambda: False)  # gives up as soon as `wait` says so


# --------------------------------------------------------------------------------------------------
# plan_decoding


def test_a_selector_that_visits_every_group_gets_one_time_ordered_pass():
    groups = interleaved_groups(12, 3)  # 4 groups: units 0,4,8 / 1,5,9 / ...
    plan = plan_decoding(groups, FPU, FRAME_BYTES, may_stop_early=False, max_batch_bytes=None)
    assert len(plan.batches) == 1 and plan.batches[0].tolist() == list(range(24))
    assert not plan.ahead and plan.batch_of_group == dict.fromkeys(range(4), 0)
    assert plan.group_of_units[(1, 5, 9)] == 1


def test_a_selector_that_may_stop_early_gets_batches_of_1_1_2_4_groups():
    groups = interleaved_groups(32, 2)  # 16 groups of 2 units
    plan = plan_decoding(groups, FPU, FRAME_BYTES, may_stop_early=True, max_batch_bytes=None)
    sizes = [len(b) // (2 * FPU) for b in plan.batches]
    assert sizes == [1, 1, 2, 4, 8] and plan.ahead
    assert plan.batches[2].tolist() == sorted(positions_of([2, 18, 3, 19]).tolist())
    assert [plan.batch_of_group[g] for g in range(16)] == [0, 1, 2, 2, 3, 3, 3, 3] + [4] * 8
    assert (plan.batch_of_position[positions_of([3])] == 2).all()


def test_batches_are_capped_in_bytes():
    groups = interleaved_groups(32, 2)
    group_bytes = 2 * FPU * FRAME_BYTES
    plan = plan_decoding(groups, FPU, FRAME_BYTES, may_stop_early=False, max_batch_bytes=3 * group_bytes)
    assert [len(b) // (2 * FPU) for b in plan.batches] == [3, 3, 3, 3, 3, 1]
    lite = plan_decoding(groups, FPU, FRAME_BYTES, may_stop_early=True, max_batch_bytes=3 * group_bytes)
    assert [len(b) // (2 * FPU) for b in lite.batches] == [1, 1, 2, 3, 3, 3, 3]


def test_group_read_cost():
    # every frame sampled, a keyframe every 8 frames, 63 groups: units 252 frames apart, a seek each
    assert group_read_cost(8, 1, 2, 63) == 1 + 8 / 4
    # 2 fps of 30 fps, a keyframe every 150 frames: half an interval before each 2-frame unit 15 frames apart
    assert group_read_cost(150, 15, 2, 19) == 1 + 150 / 60
    # units of a group closer than a keyframe interval: a group read decodes the whole span, like a pass
    assert group_read_cost(250, 1, 2, 64) == 64
    assert [plan.describe() for plan in (DecodePlan.empty(), plan_decoding(interleaved_groups(8, 2), FPU, 1, True,
                                                                            None))] == ["on demand", "growing batches"]
    assert plan_decoding(interleaved_groups(8, 2), FPU, 1, False, None).describe() == "one pass"
    assert plan_decoding(interleaved_groups(8, 2), FPU, FRAME_BYTES, False, 2 * FPU * FRAME_BYTES).describe() == \
        "4 passes"


# --------------------------------------------------------------------------------------------------
# FrameSource


@pytest.mark.parametrize("decode_ahead", [True, False])
def test_lite_decodes_no_frame_beyond_the_batch_after_the_group_it_is_on(decode_ahead):
    groups = interleaved_groups(32, 2)
    source, reader, _, indices = source_for(groups, may_stop_early=True, decode_ahead=decode_ahead)
    plan = source.plan
    for g in range(3):  # Lite visits groups 0, 1, 2 and stops
        frames = source.get(positions_of(groups[g]), group=g)
        assert (frames[:, 0, 0, 0] == indices[positions_of(groups[g])] % 251).all()
    if decode_ahead:  # the background decoder finishes what it may: up to the batch after group 2's
        wait_for(lambda: source._done[plan.batch_of_group[2] + 1])
    window = np.concatenate(plan.batches[:plan.batch_of_group[2] + 2 if decode_ahead else plan.batch_of_group[2] + 1])
    assert set(decoded(reader)) == set(indices[window].tolist())
    # the final pass asks for a unit of a group never visited, outside the window: only its frames are decoded
    before = len(decoded(reader))
    source.get(positions_of([15]))
    assert decoded(reader)[before:] == indices[positions_of([15])].tolist()
    source.close()
    assert len(decoded(reader)) == len(set(decoded(reader)))  # no frame twice
    assert reader.closed


def test_a_full_visit_within_a_small_budget_holds_at_most_the_budget_and_decodes_each_frame_once():
    groups = interleaved_groups(32, 2)
    group_bytes = 2 * FPU * FRAME_BYTES
    budget = 3 * group_bytes
    source, reader, cache, indices = source_for(groups, budget=budget, cap=budget // 2)
    for g, units in enumerate(groups):
        time.sleep(0.002)  # let the background decoder run ahead until the budget stops it
        frames = source.get(positions_of(units), group=g)
        assert (frames[:, 0, 0, 0] == indices[positions_of(units)] % 251).all()
    source.close()
    assert cache.peak_bytes <= budget
    assert sorted(decoded(reader)) == indices.tolist()
    # each cached frame owns its bytes: a view would keep its whole decoded chunk alive past the budget
    assert all(value.base is None for value, _ in cache._entries.values())


def test_a_second_source_on_the_same_frames_decodes_nothing():
    groups = interleaved_groups(12, 3)
    source, reader, cache, indices = source_for(groups)
    first = [source.get(positions_of(units), group=g) for g, units in enumerate(groups)]
    source.close()
    again_reader = FakeReader()
    again = FrameSource(lambda: again_reader, indices, SHAPE, "memory", cache, "video", source.plan, True)
    second = [again.get(positions_of(units), group=g) for g, units in enumerate(groups)]
    again.close()
    assert again_reader.reads == [] and again.frames_decoded == 0
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_disk_frames_are_read_back_without_decoding_again(tmp_path):
    groups = interleaved_groups(12, 3)
    disk = DiskFrames(24, SHAPE)
    source, reader, cache, indices = source_for(groups, store="disk", disk=disk)
    first = source.get(positions_of(groups[2]), group=2)
    source.close()
    assert cache.bytes == 0  # nothing in RAM
    again = FrameSource(lambda: FakeReader(), indices, SHAPE, "disk", cache, "video", source.plan, True, disk)
    assert np.array_equal(again.get(positions_of(groups[2]), group=2), first) and again.frames_decoded == 0
    again.close()
    disk.close()


def test_off_decodes_every_request_and_keeps_nothing():
    groups = interleaved_groups(12, 3)
    source, reader, cache, indices = source_for(groups, store="off")
    source.get(positions_of(groups[0]))
    source.get(positions_of(groups[0]))
    source.close()
    assert len(reader.reads) == 2 and len(cache) == 0


def test_a_decoding_error_in_the_background_reaches_the_caller():
    groups = interleaved_groups(12, 3)
    source, reader, _, indices = source_for(groups, reader=FakeReader(fail_at=3 * 7))
    with pytest.raises(VideoReadError, match="could not be decoded"):
        source.get(positions_of(groups[3]), group=3)
    source.close()


# --------------------------------------------------------------------------------------------------
# FeatureCachingAdapter


class FakeAdapter:
    frames_per_unit = 2

    def __init__(self):
        self.calls = 0

    def encode(self, pixel_inputs):
        self.calls += 1
        return pixel_inputs["pixels"].float() * 2


def test_features_are_encoded_once_per_set_of_units_and_served_as_copies():
    cache = ByteBudgetCache(10**6)
    adapter = FeatureCachingAdapter(FakeAdapter(), cache)
    assert adapter.frames_per_unit == 2  # everything else is the wrapped adapter's
    pixels = UnitPixels({"pixels": torch.arange(6).reshape(3, 2)}, ("features", "video", (0, 4)))
    first = adapter.encode(pixels)
    features, device = adapter.cached_features(("features", "video", (0, 4)))
    served = adapter.encode(UnitPixels({}, ("features", "video", (0, 4)), features, device))
    assert torch.equal(first, served) and adapter.wrapped.calls == 1 and (adapter.encoded, adapter.served) == (1, 1)
    served += 1  # the caller's copy: the cached features stay as they were
    assert torch.equal(adapter.cached_features(("features", "video", (0, 4)))[0], first)
    plain = adapter.encode({"pixels": torch.ones(1, 2)})  # not from a Pipeline session: not cached
    assert torch.equal(plain, torch.full((1, 2), 2.0)) and len(cache) == 1
