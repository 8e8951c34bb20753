"""`adapttoken-lite`: AdaptToken with early stopping.

Groups are visited in order (each spans the whole video); after the first group whose entropy is
<= theta (and at least `min_groups` seen) the rest are skipped, and the budget is allocated over the
groups seen only.
"""

from ..layout import GroupEvidence, Selection, VideoLayout
from ..registry import SELECTORS
from .adapttoken import AdaptTokenSelector
from .base import top_up


@SELECTORS.register(
    "adapttoken-lite",
    summary="`adapttoken`, visiting groups until one has entropy <= `theta`; budget over the groups seen",
)
class AdaptTokenLiteSelector(AdaptTokenSelector):
    reads = (*AdaptTokenSelector.reads, "theta", "min_groups")

    def select(self, layout: VideoLayout, groups: list[GroupEvidence]) -> Selection:
        """AdaptToken over the visited groups; when they hold fewer tokens than the budget (an early stop on
        a long video), the rest of the budget goes to evenly spaced tokens of the unvisited groups, encoded
        for the final pass without a group pass (their features are not in the candidate store)."""
        selection = super().select(layout, groups)
        return Selection(top_up(selection.kept_token_ids, layout, self.config.budget), selection.group_budgets)

    def should_stop(self, seen: list[GroupEvidence], num_groups: int) -> bool:
        return len(seen) >= self.config.min_groups and seen[-1].entropy <= self.config.theta
