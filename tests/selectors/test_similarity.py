"""The bounded feature maths the feature selectors share (`adapttoken_plugin/similarity.py`): chunked results equal
the whole-video computation, whatever the chunk size."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adapttoken_plugin import similarity
from adapttoken_plugin.layout import VideoLayout
from adapttoken_plugin.similarity import same_cell_previous_similarity, top_ids, unit_chunks


@settings(max_examples=40, deadline=None)
@given(units=st.integers(1, 9), grid=st.integers(1, 4), chunk=st.integers(1, 40), seed=st.integers(0, 999))
def test_same_cell_similarity_equals_the_whole_video_computation(units, grid, chunk, seed):
    layout = VideoLayout(num_units=units, grid_h=1, grid_w=grid)
    features = torch.randn(layout.num_tokens, 5, generator=torch.Generator().manual_seed(seed))
    saved = similarity.CHUNK_TOKENS
    similarity.CHUNK_TOKENS = chunk  # chunk boundaries anywhere, a unit carried between chunks
    try:
        got = same_cell_previous_similarity(features, layout)
    finally:
        similarity.CHUNK_TOKENS = saved
    whole = torch.nn.functional.normalize(features, dim=-1).reshape(units, grid, 5)
    expected = torch.cat([torch.full((grid,), float("-inf")), (whole[1:] * whole[:-1]).sum(-1).flatten()])
    assert torch.allclose(got, expected, atol=1e-6)


def test_similarity_reads_only_the_similarity_columns():
    layout = VideoLayout(num_units=3, grid_h=1, grid_w=2, similarity_dims=4)
    features = torch.randn(6, 4).repeat(1, 2)
    features[:, 4:] = torch.randn(6, 4)  # the DeepStack-like columns after `similarity_dims` differ wildly
    plain = VideoLayout(num_units=3, grid_h=1, grid_w=2)
    assert torch.equal(same_cell_previous_similarity(features, layout),
                       same_cell_previous_similarity(features[:, :4], plain))


def test_unit_chunks_cover_the_video_in_order_with_at_least_one_unit_each():
    layout = VideoLayout(num_units=7, grid_h=2, grid_w=3)
    assert list(unit_chunks(layout, max_tokens=13)) == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert list(unit_chunks(layout, max_tokens=1)) == [(u, u + 1) for u in range(7)]


def test_top_ids_break_ties_by_the_lower_index_and_return_them_ascending():
    scores = torch.tensor([0.5, 0.9, 0.5, 0.9, 0.1])
    assert top_ids(scores, 3).tolist() == [0, 1, 3]
    assert top_ids(scores, 10).tolist() == [0, 1, 2, 3, 4]
