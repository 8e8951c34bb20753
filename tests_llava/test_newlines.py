"""Newline layout of a ragged set of kept tokens (pure)."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adapttoken_plugin.integrations.llava.newlines import NewlineRule, video_block
from adapttoken_plugin.layout import VideoLayout


class Cfg:
    def __init__(self, merge, position):
        self.mm_patch_merge_type, self.mm_newline_position = merge, position


LAYOUT = VideoLayout(num_units=2, grid_h=2, grid_w=2)  # 2 frames of 2 x 2 tokens: ids 0-3, 4-7
KEPT = torch.tensor([0, 3, 4, 5])  # frame 0: row 0, row 1; frame 1: row 0 (both cells)


def block(merge, position, kept=KEPT):
    b = video_block(NewlineRule.from_config(Cfg(merge, position), LAYOUT), kept)
    return b.token_columns.tolist(), b.newline_columns.tolist(), b.length


def test_grid_newline_after_each_row_that_keeps_a_token():
    # t0 NL | t3 NL | t4 t5 NL
    assert block("spatial_unpad", "grid") == ([0, 2, 4, 5], [1, 3, 6], 7)


def test_frame_newline_after_each_frame_that_keeps_a_token():
    # t0 t3 NL | t4 t5 NL
    assert block("spatial_unpad", "frame") == ([0, 1, 3, 4], [2, 5], 6)


def test_one_token_newline_once_after_the_video_only_with_unpad():
    assert block("spatial_unpad", "one_token") == ([0, 1, 2, 3], [4], 5)
    assert block("spatial", "one_token") == ([0, 1, 2, 3], [], 4)


def test_no_newline_for_no_token_and_flat():
    assert block("spatial_unpad", "no_token") == ([0, 1, 2, 3], [], 4)
    assert block("flat", "grid") == ([0, 1, 2, 3], [], 4)


def test_every_token_kept_gives_upstream_grid_layout():
    # upstream add_token_per_grid: every row of every frame, then its newline
    tokens, newlines, length = block("spatial_unpad", "grid", torch.arange(8))
    assert newlines == [2, 5, 8, 11] and length == 12
    assert tokens == [0, 1, 3, 4, 6, 7, 9, 10]


def test_unknown_newline_position_is_refused():
    import pytest

    from adapttoken_plugin.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match="mm_newline_position='row'"):
        NewlineRule.from_config(Cfg("spatial_unpad", "row"), LAYOUT)


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, 7 * 16 - 1), min_size=1), st.sampled_from(["grid", "frame", "one_token"]))
def test_columns_partition_the_block_and_one_newline_per_span(kept, position):
    layout = VideoLayout(num_units=7, grid_h=4, grid_w=4)
    ids = torch.tensor(sorted(kept))
    rule = NewlineRule.from_config(Cfg("spatial_unpad", position), layout)
    b = video_block(rule, ids)
    columns = sorted(b.token_columns.tolist() + b.newline_columns.tolist())
    assert columns == list(range(b.length))
    assert (torch.diff(b.token_columns) > 0).all()
    span = {"grid": 4, "frame": 16, "one_token": 7 * 16}[position]
    assert len(b.newline_columns) == len({k // span for k in kept})
    # each newline directly follows the last kept token of its span
    last_of_span = {k // span: i for i, k in enumerate(sorted(kept))}
    assert sorted(b.token_columns[list(last_of_span.values())].add(1).tolist()) == b.newline_columns.tolist()
