"""On-disk cache of group-pass evidence, one file per (video, question, model, frames, scoring) key.

The key holds everything a group pass depends on and nothing else (`Sweep._evidence_key` builds it):

- the video file's content (sha256) and the decoder (`auto` resolved, with its version: decoders resize
  differently);
- the model: `_name_or_path`, a hash of its config, a fingerprint of its weights, its dtype, the
  processor's config, and the versions of adapttoken, transformers and torch;
- every setting whose phase is in `config.EVIDENCE_PHASES` (sampling, group pass, positions: fps,
  max_frames, max_pixels, frames_per_group, the resolved scoring_layer, score_reduce, the entropy settings,
  position_rule, positions_1d), read from the config schema, so a new group-pass setting is in the key
  without a change here; the option token ids when entropy_mode is `options`;
- the prompt: the question with its options, and its token ids around the video (chat template, tokenizer).

Not in the key: the `selection` settings (selector, budget, tau, theta, ...: selection reads them, the
group passes do not), the `storage` settings, and the number of candidates kept per group, which depends on
the largest budget:
an entry stores it and serves any run that needs at most that many (else it is a miss and is rebuilt).
Entries are written atomically (temporary file, then rename), so an interrupted write leaves no entry; an
entry that cannot be read, or is read but lacks a field this version stores, is rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..layout import GroupEvidence, VideoLayout


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def model_identity(model: Any, processor: Any) -> dict[str, str]:
    """What identifies a model for the cache: path, config hash, weights fingerprint, dtype, versions.

    The weights fingerprint hashes a sum of each parameter's first 1,024 values (cheap on any device),
    so two checkpoints with the same config but different weights do not share entries.
    """
    import transformers

    from .. import __version__

    with torch.no_grad():
        sums = torch.stack([p.detach().flatten()[:1024].double().sum().cpu() for p in model.parameters()])
    return {
        "name_or_path": str(getattr(model.config, "_name_or_path", "")),
        "config_sha256": _sha(model.config.to_json_string(use_diff=False)),
        "weights_fingerprint": _sha(sums.numpy().tobytes()),
        "dtype": str(model.dtype),
        "processor_sha256": _sha(processor.to_json_string()) if hasattr(processor, "to_json_string") else "",
        "versions": f"adapttoken {__version__}, transformers {transformers.__version__}, torch {torch.__version__}",
    }


def _sha(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


@dataclass
class CachedEvidence:
    """A cache entry: the layout and every group's evidence, as the group passes left them.

    `candidates`: ranked candidates kept per group (ceil(overselect * budget) of the budget it was
    collected for, capped by the group's size). `setup_seconds`: video setup when it was collected.
    """

    layout: VideoLayout
    groups: list[GroupEvidence]
    candidates: int
    setup_seconds: float

    def serves(self, candidates: int) -> bool:
        """Whether every group holds the `candidates` best tokens a run may ask for."""
        return self.candidates >= candidates or all(self.candidates >= g.num_tokens for g in self.groups)


def candidates_needed(overselect: float, budget: int) -> int:
    """Ranked candidates per group a run with this budget may read (what `Stage.collect_evidence` keeps)."""
    return math.ceil(overselect * budget)


@dataclass
class EvidenceCache:
    """Entries under `folder`; `hits` / `misses` count lookups (a stale or insufficient entry is a miss)."""

    folder: Path
    hits: int = 0
    misses: int = 0

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @property
    def hit_rate(self) -> float | None:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None

    def path_of(self, key: dict[str, Any]) -> Path:
        return self.folder / f"{_sha(json.dumps(key, sort_keys=True))[:40]}.pt"

    def get(self, key: dict[str, Any], candidates: Callable[[VideoLayout], int]) -> CachedEvidence | None:
        """The entry for `key` if it holds the `candidates(layout)` per group a run needs; counts a hit or a miss.

        `candidates` is a function of the entry's layout because a budget may be a fraction of the video.
        """
        entry = self._load(key)
        if entry is not None and entry.serves(candidates(entry.layout)):
            self.hits += 1
            return entry
        self.misses += 1
        return None

    def put(self, key: dict[str, Any], entry: CachedEvidence) -> None:
        """Store atomically: write a temporary file in the same folder, then rename it over the entry."""
        payload = {
            "key": key, "candidates": entry.candidates, "setup_seconds": entry.setup_seconds,
            "layout": _layout_dict(entry.layout),
            "groups": [{
                "group_id": g.group_id, "units": g.units, "token_ids": g.token_ids, "scores": g.scores.cpu(),
                "entropy": g.entropy, "candidate_ids": g.candidate_ids.cpu(),
                "candidate_features": g.candidate_features.cpu(), "seconds": dict(g.seconds),
            } for g in entry.groups],
        }
        path = self.path_of(key)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=path.stem, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(payload, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _load(self, key: dict[str, Any]) -> CachedEvidence | None:
        path = self.path_of(key)
        if not path.exists():
            return None
        try:
            payload = torch.load(path, weights_only=True)
        except Exception:  # an unreadable entry is rebuilt, not trusted
            return None
        if not isinstance(payload, dict) or payload.get("key") != key:  # a hash collision or another key layout
            return None
        try:
            groups = [GroupEvidence(g["group_id"], g["units"], g["token_ids"], scores=g["scores"], entropy=g["entropy"],
                                    candidate_ids=g["candidate_ids"], candidate_features=g["candidate_features"],
                                    seconds=dict(g["seconds"])) for g in payload["groups"]]
            layout = dict(payload["layout"])
            layout["frame_indices"] = None if layout["frame_indices"] is None else tuple(layout["frame_indices"])
            return CachedEvidence(VideoLayout(**layout), groups, payload["candidates"], payload["setup_seconds"])
        except (KeyError, TypeError, ValueError, AttributeError):  # readable, but of another layout: rebuilt
            return None


def _layout_dict(layout: VideoLayout) -> dict[str, Any]:
    """Every field of the layout (a new field is stored without a change here), as plain values."""
    values = dataclasses.asdict(layout)
    values["frame_indices"] = None if layout.frame_indices is None else list(layout.frame_indices)
    return values
