"""`adapttoken-lite`: AdaptToken with early stopping.

Groups are visited in order (each spans the whole video); after the first group whose entropy is
<= theta (and at least `min_groups` seen) the rest are skipped, and the budget is allocated over the
groups seen only.
"""

from ..layout import GroupEvidence
from ..registry import SELECTORS
from .adapttoken import AdaptTokenSelector


@SELECTORS.register(
    "adapttoken-lite",
    summary="`adapttoken`, visiting groups until one has entropy <= `theta`; budget over the groups seen",
)
class AdaptTokenLiteSelector(AdaptTokenSelector):
    reads = (*AdaptTokenSelector.reads, "theta", "min_groups")
    exact_budget = False  # stopped early, it keeps at most the visited groups' tokens

    def should_stop(self, seen: list[GroupEvidence], num_groups: int) -> bool:
        return len(seen) >= self.config.min_groups and seen[-1].entropy <= self.config.theta
