"""`fastv`: FastV's rule as a selector before the language model (Chen et al., "An Image is Worth 1/2 Tokens
After Layer 2: Plug-and-Play Inference Acceleration for Large Vision-Language Models", ECCV 2024).

Rule: rank the visual tokens by the attention the last text token pays them at an early decoder layer K
(`early_layer`, default 2, the paper's K) and keep the top `budget`. Each group's prefill stops right after
layer K (the stage's early-layer pass: no entropy, no later layers), and one global top-k runs over all
groups.

Departs from the original: FastV prunes inside the language model, after layer K of a single pass over the
whole sequence, so layers 0..K see every visual token and the answer is generated from that same pass. Here
the selection happens before the language model, on interleaved groups (a long video does not fit one
pass), and the answer comes from a final pass over the kept tokens only; the budget is a token count, not
FastV's ratio R.
"""

from ..registry import SELECTORS
from .flexselect import FlexSelectSelector


@SELECTORS.register("fastv", summary="FastV: the last text token's attention at early_layer, one global top-k")
class FastVSelector(FlexSelectSelector):
    """FlexSelect's pooled top-k (and its bounded candidate store) on the early-layer pass's scores."""

    early_layer_pass = True
