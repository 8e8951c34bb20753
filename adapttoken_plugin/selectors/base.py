"""The contract every selection strategy follows.

A selector never touches the model. The selection stage visits groups (when `needs_group_pass`),
asks `should_stop` after each, then calls `select` once with what it learnt.

A strategy is one file in this folder (found without a list to edit) or in another distribution (entry
point group `adapttoken_plugin.selectors`):

    @SELECTORS.register("my-method", summary="one line for `adapttoken list`")
    class MySelector(Selector):
        needs_group_pass = True                 # the stage runs the per-group prefills first
        reads = ("budget", "tau")               # the AdaptTokenConfig settings `select` reads

        def select(self, layout, groups): ...   # -> Selection(kept ids ascending, one budget per group)

`reads` is the declaration the ablation grid (which axes to expand), `adapttoken list` and the warning for
an ignored setting come from; tests/selectors/test_selector_contract.py checks every registered selector.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ..config import AdaptTokenConfig, setting_fields, settings_in
from ..errors import RegistryError
from ..layout import GroupEvidence, Selection, VideoLayout


class Selector:
    """Base class: subclasses override `select` (and `should_stop` for early exit).

    Class attributes (the declaration of the evidence it needs: the stage produces exactly that):
        needs_group_pass: whether the stage must run the per-group prefill (scores, entropy) before `select`.
        early_layer_pass: the group passes stop after layer `early_layer`, scored by the last text token's
            attention, with no entropy (FastV's signal); implies `needs_group_pass`.
        needs_features: whether `select` gets `features`: (N, D) every visual token's features in token-id
            order (time, then raster), from one vision pass over all sampled frames and no language-model
            pass; `select(layout, groups, features=...)` must then take the keyword.
        merges: whether it may return merged tokens (`Selection.merged_ids` / `merged_features`).
        reads: the `AdaptTokenConfig` settings the selector's own rule reads (`select`, `should_stop`). A
            selector with group passes also depends on every `group pass` setting through its evidence.
        exact_budget: whether it keeps exactly min(budget, visual tokens); False for selectors that may
            keep fewer (or, like `full`, ignore the budget).
    """

    registry_name: ClassVar[str] = "?"
    needs_group_pass: ClassVar[bool] = True
    early_layer_pass: ClassVar[bool] = False
    needs_features: ClassVar[bool] = False
    merges: ClassVar[bool] = False
    reads: ClassVar[tuple[str, ...]] = ("budget",)
    exact_budget: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        known = {f.name for f in setting_fields()}
        unknown = [name for name in cls.reads if name not in known]
        if unknown:
            raise RegistryError(f"{cls.__name__}.reads names {unknown}, which are not AdaptTokenConfig settings; "
                                f"settings: {sorted(known)}")
        if cls.early_layer_pass and not cls.needs_group_pass:
            raise RegistryError(f"{cls.__name__}: early_layer_pass is a kind of group pass; set needs_group_pass")

    def __init__(self, config: AdaptTokenConfig) -> None:
        self.config = config

    @classmethod
    def settings_read(cls) -> tuple[str, ...]:
        """Every setting the selection depends on: `reads`, plus the group-pass settings its evidence is made
        with (the early-layer pass reads only `frames_per_group` and `early_layer`)."""
        if cls.early_layer_pass:
            group: tuple[str, ...] = ("frames_per_group", "early_layer")
        elif cls.needs_group_pass:
            group = tuple(s for s in settings_in("group pass") if s != "early_layer")
        else:
            group = ()
        return tuple(dict.fromkeys((*cls.reads, *group)))

    @classmethod
    def evidence(cls) -> str:
        """What the stage produces for it, in words (`adapttoken list`, the docs tables)."""
        parts = ["features"] if cls.needs_features else []
        if cls.needs_group_pass:
            parts.append("early-layer pass" if cls.early_layer_pass else "group passes")
        return " + ".join(parts) or "none"

    def should_stop(self, seen: list[GroupEvidence], num_groups: int) -> bool:
        """Called after each group pass; True skips the remaining groups."""
        return False

    def candidate_bounds(self, seen: list[GroupEvidence]) -> list[int] | None:
        """After each group pass: how many ranked candidates each group seen so far can still need, whatever
        groups come later (None: no bound; the stage keeps ceil(overselect * budget) per group). The stage
        drops the rest as it goes, so the candidate store stays bounded on long videos; a bound that is too
        small would change the selection (the contract suite's store test checks it does not)."""
        return None

    def select(self, layout: VideoLayout, groups: list[GroupEvidence]) -> Selection:
        raise NotImplementedError


def top_by_score(group: GroupEvidence, count: int) -> torch.Tensor:
    """Global token ids of the `count` best-scored tokens of a group (ties to the earlier token)."""
    if group.candidate_ids is None:
        raise ValueError(f"group {group.group_id} has no ranked candidates; did the group pass run?")
    if count > len(group.candidate_ids):
        raise ValueError(f"group {group.group_id}: {count} tokens asked, {len(group.candidate_ids)} candidates kept")
    return group.candidate_ids[:count]


def evenly_spaced(ids: torch.Tensor, count: int) -> torch.Tensor:
    """`count` entries of the ascending (N,) `ids` at the centres of `count` equal segments (all of them when
    count >= N): even coverage of whatever the ids span."""
    if count >= len(ids):
        return ids
    return ids[((torch.arange(count) + 0.5) * len(ids) / count).long()]


def top_up(kept: torch.Tensor, layout: VideoLayout, budget: int) -> torch.Tensor:
    """`kept` (ascending ids) plus evenly spaced tokens of the rest of the video, up to min(budget, all tokens):
    a selector that found fewer tokens than its budget still reaches the final pass with the same count as
    the others (comparisons at "the same budget" mean the same number of tokens)."""
    short = min(budget, layout.num_tokens) - len(kept)
    if short <= 0:
        return kept
    rest = torch.arange(layout.num_tokens)
    rest = rest[~torch.isin(rest, kept)]
    return torch.sort(torch.cat([kept, evenly_spaced(rest, short)])).values


def global_top_k(groups: list[GroupEvidence], budget: int) -> Selection:
    """One top-k over every visited group's ranked candidates, by score (ties to the lower token id): the
    groups' scores are compared directly, with no per-group budget. Returns the kept ids (ascending) and how
    many each group gave."""
    ids = torch.cat([g.candidate_ids for g in groups])
    scores = torch.cat([g.scores[torch.searchsorted(g.token_ids, g.candidate_ids)].float() for g in groups])
    by_id = torch.argsort(ids)  # ties to the lower id: a stable sort by score over ids in ascending order
    order = by_id[torch.argsort(scores[by_id], descending=True, stable=True)]
    kept = torch.sort(ids[order[:budget]]).values
    return Selection(kept, [int(torch.isin(g.candidate_ids, kept).sum()) for g in groups])


def sorted_ids(parts: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate token-id tensors and sort them (temporal, then raster order)."""
    if not parts:
        return torch.empty(0, dtype=torch.long)
    return torch.sort(torch.cat(parts)).values
