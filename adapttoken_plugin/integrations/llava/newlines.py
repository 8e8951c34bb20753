"""Where LLaVA-NeXT's `image_newline` goes in a video block, for any (ragged) set of kept tokens.

LLaVA-NeXT lays a video out by `config.mm_patch_merge_type` and `config.mm_newline_position`
(`llava_arch.py`, `prepare_inputs_labels_for_multimodal`), all frames' pooled tokens in raster order:

| merge type / newline position | full layout | newline after |
|---|---|---|
| `spatial*` + `grid` | every frame row, then one newline (`add_token_per_grid`) | each frame row |
| `spatial*` + `frame` | every frame, then one newline (`add_token_per_frame`) | each frame |
| `spatial*unpad*` + `one_token` | all tokens, then one newline | the video |
| `spatial*` + `one_token` without `unpad`, `spatial*` + `no_token`, `flat` | all tokens | nothing |

The upstream code reshapes every frame to a full square grid, so it cannot lay out a ragged set. The
rule used for kept tokens, which gives the upstream layout exactly when every token is kept: the kept
tokens in temporal-then-raster order, and one newline after the last kept token of each *span* (frame
row, frame or video) that keeps at least one token. A span that keeps nothing is dropped with its
newline, as every adapter drops a frame unit with its text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import UnsupportedModelError
from ...layout import VideoLayout

NEWLINE_POSITIONS = ("grid", "frame", "one_token", "no_token")


@dataclass(frozen=True)
class NewlineRule:
    """One newline after every `span` consecutive visual tokens of the full video (None: no newline)."""

    span: int | None

    @classmethod
    def from_config(cls, config, layout: VideoLayout) -> NewlineRule:
        """The rule a LLaVA-NeXT model config implies for videos of `layout` (defaults as upstream's)."""
        merge = getattr(config, "mm_patch_merge_type", "flat")
        position = getattr(config, "mm_newline_position", "one_token")
        if merge == "flat":
            return cls(None)
        if not merge.startswith("spatial"):
            raise UnsupportedModelError(f"mm_patch_merge_type={merge!r} is not one LLaVA-NeXT lays videos out with "
                                        "(expected 'flat' or 'spatial...')")
        if position not in NEWLINE_POSITIONS:
            raise UnsupportedModelError(f"mm_newline_position={position!r}: expected one of {NEWLINE_POSITIONS}")
        if position == "grid":
            return cls(layout.grid_w)
        if position == "frame":
            return cls(layout.tokens_per_unit)
        if position == "one_token" and "unpad" in merge:
            return cls(layout.num_tokens)
        return cls(None)


@dataclass
class VideoBlock:
    """The video part of the sequence for kept tokens `token_ids` (K,), ascending.

    Attributes:
        token_columns: (K,) position of each kept token inside the block.
        newline_columns: (N,) positions of the newlines inside the block.
        length: K + N.
    """

    token_columns: torch.Tensor
    newline_columns: torch.Tensor
    length: int


def video_block(rule: NewlineRule, token_ids: torch.Tensor) -> VideoBlock:
    """Lay out kept tokens (ascending global ids) with a newline after the last kept token of each span."""
    token_ids = token_ids.cpu()
    count = len(token_ids)
    if rule.span is None or count == 0:
        return VideoBlock(torch.arange(count), torch.zeros(0, dtype=torch.long), count)
    spans = token_ids // rule.span
    closes = torch.ones(count, dtype=torch.bool)  # the token is the last kept one of its span
    closes[:-1] = spans[1:] != spans[:-1]
    newlines_before = torch.cumsum(closes.long(), 0) - closes.long()
    token_columns = torch.arange(count) + newlines_before
    newline_columns = token_columns[closes] + 1
    return VideoBlock(token_columns, newline_columns, count + int(closes.sum()))
