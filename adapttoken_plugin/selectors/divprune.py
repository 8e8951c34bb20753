"""`divprune`: greedy max-min diversity over the video's token features (Alvar et al., "DivPrune: Diversity-based
Visual Token Pruning for Large Multimodal Models", CVPR 2025).

Rule: with the cosine distance d(a, b) = 1 - cos(a, b), pick tokens one at a time, each time the token whose
distance to its nearest already-picked token is largest (the greedy answer to the max-min diversity problem),
until min(budget, tokens) are picked; ties go to the lower token id. The kept ids are returned in time order.

Departs from the original: DivPrune builds the N x N cosine-distance matrix of one image's tokens and starts
from the token farthest from its own nearest neighbour. A video has 10^5..10^6 tokens, so the matrix is never
built: a running vector of every token's distance to its nearest picked token is updated after each pick, one
chunk of features at a time; the first pick is the token farthest from the mean direction of all tokens (what
needs no pairwise distances). DivPrune prunes one image; here the tokens of all frame units compete in one pool.

Memory: the (N,) running minimum and norms, plus one chunk, O(N + CHUNK_TOKENS x D') floats; time O(N x K x D')
for K kept tokens: one pass over the features per pick, on the feature store's device, the products in the
features' own dtype (bf16 for a bf16 model: distances to about 3 significant digits). Slow on CPU for long videos;
`feature_store="device"` puts it on the GPU.
"""

from __future__ import annotations

import torch

from ..layout import GroupEvidence, Selection, VideoLayout
from ..registry import SELECTORS
from ..similarity import CHUNK_TOKENS, similarity_view
from .base import Selector


def max_min_diverse(features: torch.Tensor, count: int, chunk: int | None = None) -> torch.Tensor:
    """Greedy max-min diversity by cosine distance: (min(count, N),) int64 row indices of `features` (N, D') in
    the order picked (every row in order when count >= N); the first is the row farthest from the mean direction,
    ties to the lower index."""
    n, chunk = features.shape[0], chunk or CHUNK_TOKENS
    count = min(count, n)
    if count <= 0:
        return torch.empty(0, dtype=torch.long)
    if count == n:  # every row: the greedy order is not worth O(N^2 x D') here
        return torch.arange(n)
    norms = torch.cat([rows.float().norm(dim=-1) for rows in features.split(chunk)]).clamp_min(1e-12)
    mean = sum(((rows.float() / n_rows[:, None]).sum(0) for rows, n_rows in zip(features.split(chunk),
                                                                                  norms.split(chunk))))

    def distance_to(vector: torch.Tensor) -> torch.Tensor:
        """(N,) float32 cosine distance of every row to `vector` (D',), one chunk at a time. The products are taken
        in the features' own dtype: converting a bf16 store to float32 on every pick costs ~15x the product."""
        unit = (vector.float() / vector.float().norm().clamp_min(1e-12)).to(features.dtype)
        return 1.0 - torch.cat([(rows @ unit).float() / n_rows for rows, n_rows in zip(features.split(chunk),
                                                                                     norms.split(chunk))])

    picked = [int(torch.argmax(distance_to(mean)))]  # argmax returns the first maximum: ties to the lower index
    nearest = distance_to(features[picked[0]])
    nearest[picked[0]] = float("-inf")  # a picked row is never picked again, even when another row equals it
    for _ in range(count - 1):
        picked.append(int(torch.argmax(nearest)))
        nearest = torch.minimum(nearest, distance_to(features[picked[-1]]))  # -inf stays on the picked rows
        nearest[picked[-1]] = float("-inf")
    return torch.tensor(picked, dtype=torch.long)


@SELECTORS.register("divprune", summary="DivPrune: greedy max-min cosine diversity over every token's features")
class DivPruneSelector(Selector):
    needs_group_pass = False
    needs_features = True
    reads = ("budget",)

    def select(self, layout: VideoLayout, groups: list[GroupEvidence], *, features: torch.Tensor) -> Selection:
        kept = torch.sort(max_min_diverse(similarity_view(features, layout), self.config.budget)).values
        return Selection(kept, [int(torch.isin(g.token_ids, kept).sum()) for g in groups])
