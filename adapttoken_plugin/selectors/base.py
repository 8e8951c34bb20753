"""The contract every selection strategy follows.

A selector never touches the model. The selection stage visits groups (when `needs_group_pass`),
asks `should_stop` after each, then calls `select` once with what it learnt.
"""

from __future__ import annotations

import torch

from ..config import AdaptTokenConfig
from ..layout import GroupEvidence, Selection, VideoLayout


class Selector:
    """Base class: subclasses override `select` (and `should_stop` for early exit)."""

    registry_name = "?"
    #: whether the stage must run the per-group prefill (scores and entropy) before `select`
    needs_group_pass = True

    def __init__(self, config: AdaptTokenConfig) -> None:
        self.config = config

    def should_stop(self, seen: list[GroupEvidence], num_groups: int) -> bool:
        """Called after each group pass; True skips the remaining groups."""
        return False

    def select(self, layout: VideoLayout, groups: list[GroupEvidence]) -> Selection:
        raise NotImplementedError


def top_by_score(group: GroupEvidence, count: int) -> torch.Tensor:
    """Global token ids of the `count` best-scored tokens of a group (ties to the earlier token)."""
    if group.candidate_ids is None:
        raise ValueError(f"group {group.group_id} has no ranked candidates; did the group pass run?")
    if count > len(group.candidate_ids):
        raise ValueError(f"group {group.group_id}: {count} tokens asked, {len(group.candidate_ids)} candidates kept")
    return group.candidate_ids[:count]


def sorted_ids(parts: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate token-id tensors and sort them (temporal, then raster order)."""
    if not parts:
        return torch.empty(0, dtype=torch.long)
    return torch.sort(torch.cat(parts)).values
