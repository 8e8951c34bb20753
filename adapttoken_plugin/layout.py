"""What passes between adapters, the selection stage and selectors: model-agnostic token layout.

A video is a sequence of *frame units* (what the model encodes as one temporal step: a frame pair
for Qwen2/2.5-VL). Each unit yields `grid_h * grid_w` visual tokens in raster order, so visual
token `k` of the full video belongs to unit `k // tokens_per_unit` and spatial cell
`k % tokens_per_unit`; sorting token ids gives temporal-then-raster order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class VideoLayout:
    """Token layout of one video as the language model sees it.

    Attributes:
        num_units: frame units in the whole video.
        grid_h, grid_w: visual tokens per unit along height and width (after spatial merging).
        frames_per_unit: frames the model folds into one unit (2 for Qwen2/2.5-VL).
        time_interval: temporal position step per unit for M-RoPE (tokens_per_second * seconds per unit).
        frame_indices: index in the source file of each sampled frame (num_units * frames_per_unit),
            when known; used for the trace, the report and Qwen3-VL's timestamps.
        similarity_dims: leading feature columns that de-duplication compares (None: all). Qwen3-VL's
            feature rows carry its DeepStack levels after the token's own features.
    """

    num_units: int
    grid_h: int
    grid_w: int
    frames_per_unit: int = 1
    time_interval: float = 1.0
    frame_indices: tuple[int, ...] | None = None
    similarity_dims: int | None = None

    @property
    def tokens_per_unit(self) -> int:
        return self.grid_h * self.grid_w

    @property
    def num_tokens(self) -> int:
        return self.num_units * self.tokens_per_unit

    def unit_of(self, token_ids: torch.Tensor) -> torch.Tensor:
        """(N,) global token ids -> (N,) frame-unit indices."""
        return token_ids // self.tokens_per_unit

    def cell_of(self, token_ids: torch.Tensor) -> torch.Tensor:
        """(N,) global token ids -> (N,) spatial cell (row * grid_w + col)."""
        return token_ids % self.tokens_per_unit

    def token_ids_of_units(self, units: torch.Tensor) -> torch.Tensor:
        """(U,) unit indices (ascending) -> (U * tokens_per_unit,) global token ids, ascending."""
        offsets = torch.arange(self.tokens_per_unit)
        return (units[:, None] * self.tokens_per_unit + offsets[None, :]).flatten()

    def frames_of_unit(self, unit: int) -> list[int]:
        """Source-file frame indices of one unit (sampled positions if the file indices are unknown)."""
        local = range(unit * self.frames_per_unit, (unit + 1) * self.frames_per_unit)
        if self.frame_indices is None:
            return list(local)
        return [self.frame_indices[i] for i in local]


def interleaved_groups(num_units: int, units_per_group: int) -> list[torch.Tensor]:
    """Split units into G = ceil(num_units / units_per_group) interleaved groups.

    Group g holds units g, g + G, g + 2G, ...: every group spans the whole video, so any prefix of
    groups covers it all (what AdaptToken-Lite relies on when it stops early).
    """
    if num_units <= 0:
        raise ValueError(f"num_units must be > 0, got {num_units}")
    num_groups = math.ceil(num_units / max(1, units_per_group))
    return [torch.arange(g, num_units, num_groups) for g in range(num_groups)]


@dataclass
class GroupEvidence:
    """What the selection stage learnt about one group; the only view selectors get.

    Attributes:
        group_id: index of the group in visiting order.
        units: (U_g,) global frame-unit indices, ascending.
        token_ids: (N_g,) global token ids of the group, ascending.
        scores: (N_g,) float attention score of each token (None when no group pass ran).
        entropy: answer entropy of the group pass in nats (None when no group pass ran).
        candidate_ids: (K_g,) global token ids whose features were kept, best score first.
        candidate_features: (K_g, D) their features (None when no group pass ran).
    """

    group_id: int
    units: torch.Tensor
    token_ids: torch.Tensor
    scores: torch.Tensor | None = None
    entropy: float | None = None
    candidate_ids: torch.Tensor | None = None
    candidate_features: torch.Tensor | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        return int(self.token_ids.numel())


@dataclass
class Selection:
    """A selector's decision.

    Attributes:
        kept_token_ids: (K,) global token ids to keep, ascending (temporal then raster order).
        group_budgets: tokens allocated to each visited group (same order as the evidence list).
        merged_ids: (M,) ids among `kept_token_ids` that stand for merged tokens (None: no merging): each
            reaches the final pass at its own position with the feature in `merged_features`.
        merged_features: (M, D) the merged tokens' features, row i for `merged_ids[i]`.
    """

    kept_token_ids: torch.Tensor
    group_budgets: list[int] | None = None
    merged_ids: torch.Tensor | None = None
    merged_features: torch.Tensor | None = None
