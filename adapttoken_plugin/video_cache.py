"""What the streaming pipeline keeps of a video, within a byte budget, and the decoder that fills it ahead of use.

    cache = ByteBudgetCache(2 * 2**30)          # decoded frames and encoded features, least recently used out
    source = FrameSource(open_reader, indices, frame_shape, "memory", cache, video_id, plan)
    frames = source.get(positions, group=g)     # waits for frames the background decoder is on, reads the rest
    source.close()

The groups the stage visits are interleaved (group g holds frame units g, g+G, g+2G, ...), so every group
spans the whole video and no group is complete before a time-ordered pass over the whole video ends. The
background decoder therefore works in batches of whole groups, each batch read in time order (one pass of
the decoder over the video, seeking across long gaps), following the stage's visiting order:

- a selector that visits every group gets one batch of all groups: the cheapest way to decode every frame
  (reading group by group seeks once per unit; on a long-GOP video that decodes several times more frames);
- a selector that may stop early (AdaptToken-Lite) gets batches of 1, 1, 2, 4, ... groups, batch j+1 started
  only once the stage has asked for a group of batch j: it never decodes more than one batch beyond the
  group it is on, and a long visit still reads most frames in long passes. Reading a group alone costs more
  per frame than a pass (a seek to the keyframe before each unit): where `group_read_cost` estimates more
  than GROUP_READ_COST_LIMIT times, Lite gets the one pass too;
- a selector without group passes decodes on demand (its requests come in time order).

Measured choices and numbers: docs/benchmarks.md ("Background decoding").
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: frames read by one decoder call of the background decoder: small enough that a stop or an on-demand read
#: waits little, large enough that a batch reader sorts and seeks well
CHUNK_FRAMES = 64
#: the most a group read alone may cost per frame, relative to one pass, for Lite to read group by group. Lite
#: visits about a third of the groups, and growing batches read about 1.4 times what it visits, each frame at
#: about 0.7 of the single-group cost: about 0.3 x cost of one pass, a saving up to a cost of 3. Measured in
#: docs/benchmarks.md: a 4,000-frame video sampled at every frame (keyframe every 7: cost 2.75) and a long-GOP
#: video at 2 fps (cost 3.5): Lite on a quarter of the groups was faster in batches on the first, in one pass on
#: the second
GROUP_READ_COST_LIMIT = 3.0


def group_read_cost(keyframe_interval: float, step: float, frames_per_unit: int, num_groups: int) -> float:
    """Estimated frames decoded per frame delivered when one interleaved group is read alone, relative to one
    time-ordered pass over every sampled frame (which decodes each native frame once).

    keyframe_interval: native frames between keyframes; step: native frames between consecutive samples.
    Units of one group lie num_groups * frames_per_unit * step native frames apart. Farther than a keyframe
    interval, each unit costs a seek to the keyframe before it (half an interval on average) and its own frames:
    1 + interval / (2 * frames_per_unit * step). Closer, a group read decodes the whole span like a pass, for
    1 / num_groups of its frames: num_groups.
    """
    step = max(step, 1.0)
    if num_groups * frames_per_unit * step < keyframe_interval:
        return float(num_groups)
    return 1.0 + keyframe_interval / (2.0 * frames_per_unit * step)


class ByteBudgetCache:
    """Values with a size in bytes, at most `budget` bytes in all; the least recently used go first.

    A pinned value (frames decoded ahead and not yet asked for) is never evicted; `put(..., pinned=True,
    wait=...)` waits for room while pinned values fill the budget. Thread-safe; every operation is O(1) per
    value stored, evicted or looked up.

    Attributes:
        budget: bytes the values may take together.
        bytes: bytes held now; `peak_bytes`: the most ever held (never above `budget`).
    """

    def __init__(self, budget: int) -> None:
        self.budget = int(budget)
        self.bytes = 0
        self.peak_bytes = 0
        self._entries: dict[Hashable, tuple[Any, int]] = {}
        self._evictable: OrderedDict[Hashable, None] = OrderedDict()  # unpinned keys, least recently used first
        self._changed = threading.Condition()

    def __contains__(self, key: Hashable) -> bool:
        with self._changed:
            return key in self._entries

    def __len__(self) -> int:
        with self._changed:
            return len(self._entries)

    def get(self, key: Hashable, unpin: bool = False) -> Any:
        """The value at `key` (now the most recently used), or None; `unpin` makes it evictable again."""
        with self._changed:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if key in self._evictable:
                self._evictable.move_to_end(key)
            elif unpin:
                self._evictable[key] = None
                self._changed.notify_all()
            return entry[0]

    def put(self, key: Hashable, value: Any, nbytes: int, pinned: bool = False,
            wait: Callable[[], bool] | None = None) -> bool:
        """Store `value` (`nbytes` bytes), evicting least recently used unpinned values; False when it does not
        fit. With `wait`, a value that does not fit yet waits for room as long as `wait()` is True."""
        with self._changed:
            if key in self._entries:
                self._drop(key)
            while not self._make_room(nbytes):
                if wait is None or not wait():
                    return False
                self._changed.wait(0.05)  # woken by unpin / clear; the timeout re-checks `wait`
            self._entries[key] = (value, nbytes)
            self.bytes += nbytes
            self.peak_bytes = max(self.peak_bytes, self.bytes)
            if not pinned:
                self._evictable[key] = None
            return True

    def unpin(self, keys: Sequence[Hashable]) -> None:
        """Make these values evictable (unknown keys are ignored)."""
        with self._changed:
            for key in keys:
                if key in self._entries and key not in self._evictable:
                    self._evictable[key] = None
            self._changed.notify_all()

    def clear(self) -> None:
        with self._changed:
            self._entries.clear()
            self._evictable.clear()
            self.bytes = 0
            self._changed.notify_all()

    def _make_room(self, nbytes: int) -> bool:
        if nbytes > self.budget:
            return False
        while self.bytes + nbytes > self.budget:
            if not self._evictable:
                return False
            self._drop(next(iter(self._evictable)))
        return True

    def _drop(self, key: Hashable) -> None:
        _, nbytes = self._entries.pop(key)
        self.bytes -= nbytes
        self._evictable.pop(key, None)


class DiskFrames:
    """Decoded frames of one video in a temporary file, read back with plain reads (never memory-mapped, so the
    pages stay in the kernel's page cache, out of the process's resident memory). Thread-safe.

    DiskFrames(count, frame_shape): room for `count` frames of `frame_shape` (H, W, 3) uint8.
    """

    def __init__(self, count: int, frame_shape: tuple[int, int, int]) -> None:
        self.frame_shape = frame_shape
        self.frame_bytes = math.prod(frame_shape)
        self._have = np.zeros(count, dtype=bool)
        self._tmp = tempfile.TemporaryDirectory(prefix="adapttoken-frames-")
        self._file = open(Path(self._tmp.name) / "frames.u8", "w+b")  # noqa: SIM115 (closed in close())
        self._lock = threading.Lock()

    def has(self, position: int) -> bool:
        return bool(self._have[position])

    def put(self, positions: np.ndarray, frames: np.ndarray) -> None:
        """Store frames (n, H, W, 3) at sample positions (n,)."""
        with self._lock:
            for position, frame in zip(positions.tolist(), frames):
                self._file.seek(position * self.frame_bytes)
                self._file.write(np.ascontiguousarray(frame).data)
            self._have[positions] = True

    def get(self, positions: np.ndarray) -> np.ndarray:
        """Frames (n, H, W, 3) at stored sample positions (n,)."""
        out = np.empty((len(positions), *self.frame_shape), dtype=np.uint8)
        with self._lock:
            for row, position in enumerate(positions.tolist()):
                self._file.seek(position * self.frame_bytes)
                self._file.readinto(memoryview(out[row]).cast("B"))
        return out

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()
            self._tmp.cleanup()


@dataclass(frozen=True)
class DecodePlan:
    """The order in which the background decoder reads a video's sampled frames.

    Attributes:
        batches: each batch's sample positions, ascending (one time-ordered pass each), in decoding order.
        batch_of_group: batch index of each planned group (group id -> batch).
        batch_of_position: (S,) int64 batch index of each sample position (-1: in none).
        group_of_units: the units of each planned group (as a tuple) -> its group id, to recognise the stage's
            group requests among all `pixels_for` calls.
        ahead: whether batch j+1 waits for a request of a group of batch j (a selector that may stop early);
            otherwise the batches are read back to back.
    """

    batches: tuple[np.ndarray, ...]
    batch_of_group: dict[int, int]
    batch_of_position: np.ndarray
    group_of_units: dict[tuple[int, ...], int]
    ahead: bool

    @classmethod
    def empty(cls) -> DecodePlan:
        """No background decoding: every frame is read when asked for."""
        return cls((), {}, np.zeros(0, dtype=np.int64), {}, False)

    def describe(self) -> str:
        """"on demand", "growing batches" (ahead), "one pass" or "N passes" (a pass split by the byte budget)."""
        if not self.batches:
            return "on demand"
        if self.ahead:
            return "growing batches"
        return "one pass" if len(self.batches) == 1 else f"{len(self.batches)} passes"


def plan_decoding(groups: Sequence[torch.Tensor], frames_per_unit: int, frame_bytes: int, may_stop_early: bool,
                  max_batch_bytes: int | None) -> DecodePlan:
    """The background decoder's batches for the stage's interleaved `groups` ((U_g,) unit ids each, visiting order).

    A selector that visits every group: one batch of every group (split into consecutive groups of at most
    `max_batch_bytes` of frames each, when given). One that `may_stop_early`: batches of 1, 1, 2, 4, ... groups
    (also capped by `max_batch_bytes`). A batch always holds at least one group.
    """
    group_bytes = [len(units) * frames_per_unit * frame_bytes for units in groups]
    sizes: list[int] = []  # groups per batch
    start, doubling = 0, 1
    while start < len(groups):
        want = (min(doubling, len(groups) - start) if may_stop_early else len(groups) - start)
        size, held = 0, 0
        while size < want and (size == 0 or max_batch_bytes is None
                               or held + group_bytes[start + size] <= max_batch_bytes):
            held += group_bytes[start + size]
            size += 1
        sizes.append(size)
        if may_stop_early and len(sizes) > 1:
            doubling *= 2
        start += size
    batches, batch_of_group, g = [], {}, 0
    offsets = np.arange(frames_per_unit)
    num_positions = sum(len(units) for units in groups) * frames_per_unit
    batch_of_position = np.full(num_positions, -1, dtype=np.int64)
    for b, size in enumerate(sizes):
        units = torch.cat([groups[g + i] for i in range(size)]).numpy()
        batches.append(np.sort((units[:, None] * frames_per_unit + offsets[None, :]).ravel()))
        batch_of_position[batches[-1]] = b
        batch_of_group.update({g + i: b for i in range(size)})
        g += size
    group_of_units = {tuple(units.tolist()): gid for gid, units in enumerate(groups)}
    return DecodePlan(tuple(batches), batch_of_group, batch_of_position, group_of_units, may_stop_early)


class FrameSource:
    """The sampled frames of one video by sample position, from the cache or decoded, ahead of use or on demand.

    Args:
        open_reader: makes the sized `FrameReader` (called once, at the first decode).
        indices: (S,) file frame index of each sampled frame.
        frame_shape: (H, W, 3) of a decoded frame.
        store: "memory" (frames in `cache`), "disk" (frames in `disk`) or "off" (nothing kept: every request
            decodes its frames, nothing in the background).
        cache: the byte-bounded cache of memory frames (keys `("frame", video_id, position)`).
        video_id: what identifies these frames (file content, size, sampled indices, decoder).
        plan: the background decoder's batches (`plan_decoding`); `DecodePlan.empty()` for none.
        decode_ahead: decode the batches in a background thread (True) or each batch when it is first needed.
        disk: the frame file of this video, for store="disk".

    Attributes:
        frames_decoded: frames this source decoded (background and on demand).
        decoded_positions: (frames_decoded,) int64 sample positions of those frames, in decoding order.
        reader: the FrameReader once opened, else None.
    """

    def __init__(self, open_reader: Callable[[], Any], indices: np.ndarray, frame_shape: tuple[int, int, int],
                 store: str, cache: ByteBudgetCache, video_id: str, plan: DecodePlan, decode_ahead: bool,
                 disk: DiskFrames | None = None) -> None:
        if store not in ("memory", "disk", "off"):
            raise ValueError(f"store={store!r}: expected memory, disk or off")
        if store == "disk" and disk is None:
            raise ValueError("store='disk' needs its DiskFrames")
        self._open_reader, self.indices, self.frame_shape = open_reader, np.asarray(indices), frame_shape
        self.store, self.cache, self.video_id, self.plan, self.disk = store, cache, video_id, plan, disk
        self.frame_bytes = math.prod(frame_shape)
        self.reader: Any = None
        self.frames_decoded = 0
        self._decoded: list[np.ndarray] = []  # the positions of each decoder call (8 bytes a frame, not a list's 36)
        self._read_lock = threading.Lock()  # one decoder: the background thread and on-demand reads take turns
        self._changed = threading.Condition()
        self._scheduled: set[int] = set()  # positions the background decoder is on (decoded soon)
        self._pinned: set[int] = set()  # memory positions decoded ahead and not asked for yet
        self._allowed = 1 if plan.batches else 0  # batches the decoder may start (the first at once)
        self._done = [False] * len(plan.batches)
        self._error: BaseException | None = None
        self._stop = False
        self._thread: threading.Thread | None = None
        if store != "off" and plan.batches and decode_ahead:
            self._thread = threading.Thread(target=self._run, name="adapttoken-decode-ahead", daemon=True)
            self._thread.start()
        self._background = self._thread is not None

    @property
    def decoded_positions(self) -> np.ndarray:
        return np.concatenate(self._decoded) if self._decoded else np.zeros(0, dtype=np.int64)

    # -- what the stage calls ------------------------------------------------------------------------

    def get(self, positions: np.ndarray, group: int | None = None) -> np.ndarray:
        """Frames (len(positions), H, W, 3) uint8 at sample positions (not file indices).

        `group`: the planned group these positions are (lets the background decoder go one batch further, or
        decodes its batch now without a background decoder). Raises what the decoder raised (VideoReadError).
        """
        positions = np.asarray(positions, dtype=np.int64)
        if group is not None and group in self.plan.batch_of_group:
            self._requested(self.plan.batch_of_group[group])
        elif not self.plan.ahead and len(self.plan.batches):
            # a selector that visits every group: any request (another grouping, the final pass) is served by
            # the batches, which cost less per frame than reading these frames alone
            for batch in np.unique(self.plan.batch_of_position[positions]).tolist():
                if batch >= 0:
                    self._requested(batch)
        out = np.empty((len(positions), *self.frame_shape), dtype=np.uint8)
        missing = self._take(positions, out, np.ones(len(positions), dtype=bool))
        while missing.any():
            with self._changed:
                if self._error is not None:
                    raise self._error
                scheduled = set(self._scheduled)
            # what the decoder stored since, then what nobody is decoding: read now
            missing = self._take(positions, out, missing)
            alone = missing & ~np.isin(positions, list(scheduled))
            if alone.any():
                rows = np.flatnonzero(alone)
                out[rows] = self._decode(positions[rows], pinned=False)
                missing[rows] = False
            if missing.any():  # the background decoder is on these
                with self._changed:
                    if self._error is None and self._scheduled & set(positions[missing].tolist()):
                        self._changed.wait(0.05)
                missing = self._take(positions, out, missing)
        return out

    def close(self) -> None:
        """Stop the background decoder, leave what it decoded in the cache (evictable), close the reader."""
        with self._changed:
            self._stop = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.store == "memory":
            self.cache.unpin([self._key(p) for p in self._pinned])
            self._pinned.clear()
        with self._read_lock:
            if self.reader is not None:
                self.reader.close()

    # -- inside ----------------------------------------------------------------------------------------

    def _key(self, position: int) -> tuple[str, str, int]:
        return ("frame", self.video_id, position)

    def _has(self, position: int) -> bool:
        if self.store == "memory":
            return self._key(position) in self.cache
        return self.store == "disk" and self.disk.has(position)

    def _take(self, positions: np.ndarray, out: np.ndarray, missing: np.ndarray) -> np.ndarray:
        """Fill `out` rows still `missing` from the store; returns the rows still missing."""
        missing = missing.copy()
        if self.store == "off":
            return missing
        rows = np.flatnonzero(missing)
        if self.store == "disk":
            have = np.array([self.disk.has(int(p)) for p in positions[rows]], dtype=bool)
            if have.any():
                out[rows[have]] = self.disk.get(positions[rows[have]])
                missing[rows[have]] = False
            return missing
        for row in rows:
            position = int(positions[row])
            frame = self.cache.get(self._key(position), unpin=True)
            if frame is not None:
                out[row] = frame
                missing[row] = False
                with self._changed:
                    self._pinned.discard(position)
        return missing

    def _decode(self, positions: np.ndarray, pinned: bool) -> np.ndarray:
        """Decode frames at sample positions (ascending or not) and keep them per `store`."""
        with self._read_lock:
            if self.reader is None:
                self.reader = self._open_reader()
            frames = self.reader.read(self.indices[positions])
            self.frames_decoded += len(positions)
            self._decoded.append(positions.copy())
        if self.store == "disk":
            self.disk.put(positions, frames)
        elif self.store == "memory":
            for position, frame in zip(positions.tolist(), frames):
                # a frame decoded ahead waits (pinned) until asked for; the budget holds two batches of them.
                # A copy: a view would keep its whole decoded batch alive until its last frame is evicted,
                # and a batch's frames belong to many groups, so memory would not follow the budget
                wait = (lambda: not self._stop) if pinned else None
                stored = self.cache.put(self._key(position), frame.copy(), self.frame_bytes, pinned=pinned, wait=wait)
                if stored and pinned:
                    with self._changed:
                        self._pinned.add(position)
        return frames

    def _requested(self, batch: int) -> None:
        """The stage asked for a group of `batch`: allow the next batch, or decode this one without a thread."""
        if self._background:
            with self._changed:
                if self.plan.ahead and self._allowed < batch + 2:
                    self._allowed = min(len(self.plan.batches), batch + 2)
                    self._changed.notify_all()
            return
        if self.store != "off" and not self._done[batch]:
            self._done[batch] = True
            todo = np.array([p for p in self.plan.batches[batch].tolist() if not self._has(p)], dtype=np.int64)
            for start in range(0, len(todo), CHUNK_FRAMES):
                self._decode(todo[start:start + CHUNK_FRAMES], pinned=False)

    def _run(self) -> None:
        try:
            for b, batch in enumerate(self.plan.batches):
                with self._changed:
                    while not self._stop and (self.plan.ahead and b >= self._allowed):
                        self._changed.wait()
                    if self._stop:
                        return
                    todo = [p for p in batch.tolist() if not self._has(p)]
                    self._scheduled.update(todo)
                for start in range(0, len(todo), CHUNK_FRAMES):
                    chunk = np.array(todo[start:start + CHUNK_FRAMES], dtype=np.int64)
                    if self._stop:
                        return
                    self._decode(chunk, pinned=self.store == "memory")
                    with self._changed:
                        self._scheduled.difference_update(chunk.tolist())
                        self._changed.notify_all()
                self._done[b] = True
        except BaseException as error:  # handed to the stage's next get()
            with self._changed:
                self._error = error
                self._changed.notify_all()
        finally:
            with self._changed:
                self._scheduled.clear()
                self._changed.notify_all()


def video_id_of(content_key: str, frame_size: tuple[int, int], indices: np.ndarray, backend: str,
                device: str) -> str:
    """What identifies a video's decoded frames: the file's content key, the frame size, the sampled file
    indices and the decoder (backends resize differently)."""
    digest = hashlib.sha256(f"{content_key} {frame_size} {backend} {device}".encode())
    digest.update(np.ascontiguousarray(indices, dtype=np.int64).tobytes())
    return digest.hexdigest()[:32]


class UnitPixels(dict):
    """Encoder inputs of some frame units (what `adapter.frames_to_pixels` returned), with the key under which
    their features are cached; `features` set (and the dict empty) when they were cached already."""

    def __init__(self, pixels: dict[str, Any], cache_key: Hashable, features: torch.Tensor | None = None,
                 device: torch.device | None = None) -> None:
        super().__init__(pixels)
        self.cache_key, self.features, self.device = cache_key, features, device


class FeatureCachingAdapter:
    """A model adapter whose `encode` keeps features of `UnitPixels` in a `ByteBudgetCache` (on the CPU) and
    serves them again; everything else is the wrapped adapter's. Features are cached per exact set of units
    (what one encoder call saw), so a cached answer equals a recomputed one bit for bit.

    Attributes:
        encoded, served: encoder calls made / served from the cache (counters for traces and tests).
    """

    def __init__(self, adapter: Any, cache: ByteBudgetCache) -> None:
        self.__dict__.update(_adapter=adapter, _cache=cache, encoded=0, served=0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_adapter"], name)

    @property
    def wrapped(self) -> Any:
        """The model adapter itself."""
        return self._adapter

    def cached_features(self, cache_key: Hashable) -> tuple[torch.Tensor, torch.device] | None:
        """(features on the CPU, the device encode returned them on) for `cache_key`, or None."""
        return self._cache.get(cache_key)

    def encode(self, pixel_inputs: dict[str, Any]) -> torch.Tensor:
        """Visual features (N, D) of the units in `pixel_inputs` (see `ModelAdapter.encode`)."""
        if isinstance(pixel_inputs, UnitPixels) and pixel_inputs.features is not None:
            self.__dict__["served"] += 1
            # a copy even on the CPU: whatever the caller does with it leaves the cached value as it was
            return pixel_inputs.features.to(pixel_inputs.device, copy=True)
        features = self._adapter.encode(dict(pixel_inputs))
        self.__dict__["encoded"] += 1
        if isinstance(pixel_inputs, UnitPixels):
            host = features.detach().to("cpu", copy=True)
            self._cache.put(pixel_inputs.cache_key, (host, features.device), host.numel() * host.element_size())
        return features
