"""What happened in one run of the selector stage: groups, entropies, budgets, kept tokens, seconds."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STAGES = ("decode", "vision", "prefill", "scoring", "allocation", "final")


@dataclass
class GroupTrace:
    """One group. `frames` are indices in the source video (or sampled positions when unknown)."""

    group_id: int
    frames: list[int]
    num_tokens: int
    visited: bool
    entropy: float | None = None
    budget: int | None = None
    kept: int = 0


@dataclass
class Trace:
    """The record of one selection; `model.adapttoken_trace` and `Answer.trace` hold one.

    `seconds` per stage: decode (frames read and preprocessed), vision (encoder), prefill (group
    passes, scoring excluded), scoring (attention rows recomputed), allocation (budget split and
    de-duplication), final (the answering pass or generation).
    """

    selector: str
    config: dict[str, Any]
    num_frames: int
    num_units: int
    tokens_per_unit: int
    total_tokens: int
    kept_tokens: int = 0
    merged_tokens: int = 0  # kept tokens whose feature is a merge of several (merging selectors)
    groups: list[GroupTrace] = field(default_factory=list)
    kept_token_ids: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    grid_w: int = 1  # visual tokens per row of a frame unit (cell c sits at row c // grid_w)
    frame_indices: list[int] | None = None  # source-file index of each sampled frame, when known
    frame_size: list[int] | None = None  # (height, width) frames were decoded at (streaming pipeline)
    frame_cache: str | None = None  # streaming pipeline only: the frame_cache mode used
    video_backend: str | None = None  # streaming pipeline only: the decoder that read the frames ("torchcodec")
    video_backend_version: str | None = None  # and its version
    video_decode_device: str | None = None  # where it decoded ("cpu", "cuda:0": torchcodec's NVDEC)
    frames_decoded: int | None = None  # streaming pipeline: frames decoded for this answer (0: all were cached)
    encoder_calls: int | None = None  # streaming pipeline: vision-encoder calls made (cached features need none)
    decode_order: str | None = None  # streaming pipeline: "one pass", "growing batches", "on demand" (video_cache)
    candidate_store_peak_bytes: int = 0  # the most bytes of ranked candidates (ids, features) the group passes held

    @property
    def groups_visited(self) -> int:
        return sum(g.visited for g in self.groups)

    @property
    def selection_seconds(self) -> float:
        """Everything but the final pass: the overhead selection adds."""
        return sum(v for k, v in self.seconds.items() if k != "final")

    def add_seconds(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["groups_visited"] = self.groups_visited
        return out

    def save(self, path: str | Path) -> None:
        """Write the trace as JSON to `path`: complete or not at all (a temporary file renamed over it)."""
        path = Path(path)
        partial = path.with_name(f".{path.name}.partial")
        try:
            partial.write_text(json.dumps(self.to_dict(), indent=1))
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
