"""The selector stage: group passes, selection, and the kept tokens' features, for any adapter.

    groups (interleaved frame units) -> per group: encode, one prefill with the question
    (attention scores + answer entropy), keep the top candidates -> selector.select -> features of
    the kept tokens in temporal order -> the caller runs the final pass.

    stage = Stage(model, adapter, config)            # validates the settings once
    result = stage.run(Query(prompt, layout, pixels_for, option_ids))

Every entry point uses it: the `generate`/`forward` wrappers installed by `enable` (video already
preprocessed in memory), the streaming `Pipeline` (frames decoded group by group), the LLaVA-NeXT
integration and the ablation (which keeps evidence and calls `collect_evidence` / `replay` / `finish`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .adapters.base import ModelAdapter, PromptParts
from .config import AdaptTokenConfig, setting_fields
from .distributed import check_ranks_agree, tensor_parallel_of
from .entropy import entropy, least_certain_mean, restricted_entropy
from .errors import ConfigError, OptionsRequiredError
from .heap import release_free_heap
from .layout import GroupEvidence, Selection, VideoLayout, interleaved_groups
from .registry import SELECTORS
from .scoring import ScoresCaptured, capture_scores
from .selectors.base import Selector
from .timing import StageClock
from .trace import GroupTrace, Trace
from .transfer import PendingCopies, copy_to_store

PixelsFor = Callable[[torch.Tensor], dict[str, Any]]


@dataclass
class StageResult:
    """Kept visual tokens, ready for `adapter.model_inputs`: ids (K,) ascending, features (K, D)."""

    token_ids: torch.Tensor
    features: torch.Tensor
    trace: Trace


def resolve_scoring_layer(adapter: ModelAdapter, config: AdaptTokenConfig) -> int:
    """The configured scoring layer, or the adapter's default; checked against the model depth."""
    layer = adapter.default_scoring_layer() if config.scoring_layer is None else config.scoring_layer
    if not 0 <= layer < adapter.num_layers:
        raise ConfigError(f"scoring_layer={layer} is out of range: the model has {adapter.num_layers} decoder layers")
    return layer


@dataclass
class Query:
    """One question about one video, as the stage needs it (batch 1).

    Attributes:
        prompt: the token ids around the video (`PromptParts`).
        layout: the video's token layout.
        pixels_for: `pixels_for(units)` -> encoder inputs of some frame units ((U,) ascending unit ids).
        option_ids: token ids of the option letters (A, B, ...), or None for an open question.
        video_key: what identifies the video's content (`video_key_of_file` for a file; a hash of the pixel
            tensor in memory); with the question's token ids it makes the per-question draw of selectors
            that read `seed` (`random`). None: the question and the layout only.
    """

    prompt: PromptParts
    layout: VideoLayout
    pixels_for: PixelsFor
    option_ids: Sequence[int] | None = None
    video_key: str | None = None

    def seed(self, base: int) -> int:
        """A reproducible seed for this question about this video: `base` mixed with the video key, the prompt's
        token ids and the layout (so one `seed` setting draws differently, and reproducibly, per question)."""
        digest = hashlib.sha256(json.dumps([
            base, self.video_key, _prompt_ids(self.prompt).tolist(), self.layout.num_units, self.layout.grid_h,
            self.layout.grid_w, list(self.layout.frame_indices or []),
        ]).encode()).digest()
        return int.from_bytes(digest[:8], "little") >> 1  # a non-negative 63-bit seed


@dataclass
class Evidence:
    """What the stage learnt for the selector: every group of the video, the prefix that was visited (group
    passes), the trace so far, and for selectors that need them every visual token's features (N, D) in
    token-id order, on the feature store."""

    groups: list[GroupEvidence]
    visited: list[GroupEvidence]
    trace: Trace
    features: torch.Tensor | None = None


class Stage:
    """The selector stage of one model, adapter and config: settings are validated once, here.

        stage = Stage(model, adapter, config)
        result = stage.run(Query(prompt, layout, pixels_for, option_ids))      # evidence, then selection

    The parts, for callers that reuse evidence (the ablation): `collect_evidence(query)` runs the group
    passes, `replay(evidence)` re-applies this config's stop rule to evidence of every group (Lite with
    another theta), `finish(query, evidence)` selects and gathers the kept tokens' features.

    `clock` times every stage (`Trace.seconds`): it synchronises the model's CUDA devices at each reading when
    `config.sync_timing` is set (see `timing.py`).

    Raises (when made): RegistryError for an unknown selector, ConfigError for a scoring layer deeper than the
    model or an adapter made with other position settings than `config`'s. Warns (`IgnoredSettingWarning`,
    unless `warn` is False) for a setting changed from its default that the selector does not read.
    """

    def __init__(self, model: Any, adapter: ModelAdapter, config: AdaptTokenConfig, warn: bool = True) -> None:
        self.model, self.adapter, self.config = model, adapter, config
        self.selector: Selector = SELECTORS.get(config.selector)(config)
        self.scoring_layer = resolve_scoring_layer(adapter, config)
        self.clock = StageClock.of_model(model, config.sync_timing)
        if self.selector.early_layer_pass and not config.early_layer < adapter.num_layers:
            raise ConfigError(f"early_layer={config.early_layer} is out of range: the model has {adapter.num_layers} "
                              "decoder layers")
        if (adapter.position_rule, adapter.positions_1d) != (config.position_rule, config.positions_1d):
            raise ConfigError(
                f"the adapter was made with position_rule={adapter.position_rule!r}, positions_1d="
                f"{adapter.positions_1d!r} but the config says {config.position_rule!r}, {config.positions_1d!r}: "
                "make it with adapter_for(model, config)"
            )
        if warn:
            warn_ignored_settings(config)

    @property
    def needs_video_key(self) -> bool:
        """Whether the selector draws per question (it reads `seed`): callers compute `Query.video_key` then."""
        return "seed" in self.selector.reads

    def selector_for(self, query: Query) -> Selector:
        """The selector deciding for `query`: the stage's own, or, for a selector that reads `seed`, one whose
        seed is `config.seed` mixed with the question and the video (`Query.seed`)."""
        if not self.needs_video_key:
            return self.selector
        return type(self.selector)(self.config.replace(seed=query.seed(self.config.seed)))

    def check_options(self, option_ids: Sequence[int] | None) -> None:
        """Raise OptionsRequiredError when the configured entropy needs answer options and there are none
        (callers may check before any expensive work; every run checks again)."""
        if self.config.entropy_mode == "options" and not option_ids:
            raise OptionsRequiredError(
                "entropy_mode='options' needs the answer options: pass options (Pipeline.answer) or "
                "adapttoken_option_ids (generate), or use entropy_mode='first_token'"
            )

    @torch.no_grad()
    def run(self, query: Query, on_group: Callable[[GroupEvidence, int], None] | None = None) -> StageResult:
        """Select the visual tokens of one query; `on_group(group, num_groups)` is called after each group pass."""
        return self.finish(query, self.collect_evidence(query, on_group, bound_store=True))

    @torch.no_grad()
    def collect_evidence(
        self, query: Query, on_group: Callable[[GroupEvidence, int], None] | None = None,
        features: torch.Tensor | None = None, bound_store: bool = False,
    ) -> Evidence:
        """Produce the evidence the selector declares: every token's features (`needs_features`: one vision pass
        over the video in time order, no language-model pass) and the group passes (all groups, or until
        `selector.should_stop`; `early_layer_pass`: each stops after `early_layer`).

        Scores, entropies and the features of each group's best ceil(overselect * budget) tokens do not
        depend on the budget below that, tau or theta: evidence collected once serves every such setting.
        `features`: the video's features from an earlier `encode_video` of the same query (not encoded again).
        `bound_store`: in each pass, once its entropy is known, cut the earlier groups' candidates to what they can
        still need under THIS config (`selector.candidate_bounds`), then gather the group's own up to its bound:
        the store holds overselect * budget rows plus a few per group visited (not overselect * budget per group),
        and the evidence then serves this config only (`run` does this; evidence kept for other budgets or tau
        must not).
        `trace.candidate_store_peak_bytes` records the most the store held. After each pass the allocator's free
        pages go back to the system (`heap.release_free_heap`).
        """
        self.check_options(query.option_ids)
        layout, config = query.layout, self.config
        groups = [
            GroupEvidence(g, units, layout.token_ids_of_units(units))
            for g, units in enumerate(interleaved_groups(layout.num_units, self.units_per_group))
        ]
        trace = self.empty_trace(layout)
        # tensor parallelism: every rank must run the same question with the same settings (no-op otherwise)
        check_ranks_agree(self.model, "the settings and prompt", config.to_dict(), _prompt_ids(query.prompt),
                          layout.num_units, layout.tokens_per_unit, list(query.option_ids or []))
        if self.selector.needs_features and features is None:
            features = self.encode_video(query, trace)
        if not self.selector.needs_features:
            features = None
        if not self.selector.needs_group_pass:
            return Evidence(groups, groups, trace, features)
        selector = self.selector_for(query)
        visited: list[GroupEvidence] = []
        # candidate features copied from a GPU to the CPU store without blocking: the host goes on with the next
        # group (decoding its frames) while they arrive; waited for before anything reads them
        copies = PendingCopies()
        held = 0  # bytes of the candidate store (ranked ids and their features of the groups visited)

        def make_room(group: GroupEvidence) -> int | None:
            # once the new group's entropy and ranking are known: cut the groups seen to the bounds it sets, then its
            # own features are gathered at its bound. In the other order the store would briefly hold the old bounds
            # plus the new group's, up to twice overselect * budget rows when a confident group arrives
            nonlocal held
            bounds = selector.candidate_bounds([*visited, group]) if bound_store else None
            if bounds is None:
                return None
            held -= _bound_candidates(visited, bounds[:-1], copies)
            return bounds[-1]

        for group in groups:
            self._group_pass(query, group, features, copies, make_room)
            for stage, seconds in group.seconds.items():
                trace.add_seconds(stage, seconds)
            visited.append(group)
            held += candidate_bytes(group)
            trace.candidate_store_peak_bytes = max(trace.candidate_store_peak_bytes, held)
            # what this pass freed goes back to the system (glibc keeps it otherwise: heap.py)
            release_free_heap()
            if on_group is not None:
                copies.wait()  # the callback may read the group's candidates
                on_group(group, len(groups))
            if selector.should_stop(visited, len(groups)):
                break
        copies.wait()
        return Evidence(groups, visited, trace, features)

    def replay(self, evidence: Evidence) -> Evidence:
        """The evidence as this config's selector would have visited it, given every group's evidence (Lite:
        until its stop rule fires, replayed in visiting order; selectors without group passes: every group).
        Lets evidence collected once over all groups serve any theta / min_groups."""
        return Evidence(evidence.groups, replay_visits(self.selector, evidence.groups), evidence.trace,
                        evidence.features)

    def empty_trace(self, layout: VideoLayout) -> Trace:
        """The trace of a selection on this layout before any group pass."""
        config = self.config
        return Trace(
            selector=config.selector, config=config.to_dict(), num_frames=layout.num_units * layout.frames_per_unit,
            num_units=layout.num_units, tokens_per_unit=layout.tokens_per_unit, total_tokens=layout.num_tokens,
            grid_w=layout.grid_w, frame_indices=None if layout.frame_indices is None else list(layout.frame_indices),
        )

    @property
    def units_per_group(self) -> int:
        """Frame units per group: `frames_per_group` rounded down to whole units (at least one)."""
        return max(1, self.config.frames_per_group // self.adapter.frames_per_unit)

    @torch.no_grad()
    def finish(self, query: Query, evidence: Evidence) -> StageResult:
        """Select from the evidence's visited groups and gather the kept tokens' features; the evidence is
        not modified (it may serve other budgets)."""
        config, layout, selector = self.config, query.layout, self.selector_for(query)
        trace = dataclasses.replace(evidence.trace, selector=config.selector, config=config.to_dict(), groups=[],
                                    seconds=dict(evidence.trace.seconds))
        visited = evidence.visited
        start = self.clock.now()
        if selector.needs_features:
            if evidence.features is None:
                raise ValueError(f"selector {config.selector!r} needs the video's features: collect the evidence "
                                 "with a Stage of this selector")
            selection = selector.select(layout, visited, features=evidence.features)
        else:
            selection = selector.select(layout, visited)
        trace.add_seconds("allocation", self.clock.now() - start)
        kept = selection.kept_token_ids
        check_ranks_agree(self.model, "the selection (kept tokens)", kept, list(selection.group_budgets or []))
        # every group's stored candidates, not only the visited ones': evidence collected over all groups (the
        # ablation's) may already hold the features of tokens a selector takes from groups it did not visit
        if evidence.features is not None:  # every token's features are at hand
            features = evidence.features[kept.to(evidence.features.device)]
        else:
            features = self._kept_features(query, evidence.groups, kept, trace)
        features = _with_merged(features, kept, selection)
        trace.merged_tokens = 0 if selection.merged_ids is None else int(selection.merged_ids.numel())

        budgets = dict(zip((g.group_id for g in visited), selection.group_budgets or []))
        visited_ids = {g.group_id for g in visited}
        for group in evidence.groups:
            trace.groups.append(GroupTrace(
                group_id=group.group_id,
                frames=[f for u in group.units.tolist() for f in layout.frames_of_unit(u)],
                num_tokens=group.num_tokens,
                visited=group.group_id in visited_ids and selector.needs_group_pass,
                entropy=group.entropy,
                budget=budgets.get(group.group_id),
                kept=int(torch.isin(group.token_ids, kept).sum()),
            ))
        trace.kept_tokens = int(kept.numel())
        trace.kept_token_ids = kept.tolist()
        return StageResult(kept, features, trace)

    def encode_video(self, query: Query, trace: Trace | None = None) -> torch.Tensor:
        """(N, D) features of every visual token in token-id order, on the feature store: the units encoded in
        time order, a group's worth of consecutive units at a time (the model's own vision tower; no
        language-model pass). Peak memory: the store holds N x D values (D x tokens per frame unit / frames
        per unit per frame); the encoder sees one chunk at a time."""
        store = "cpu" if self.config.feature_store == "cpu" else self.adapter.device
        parts = []
        copies = PendingCopies()  # the host decodes the next chunk while this one's features reach the CPU
        for chunk in torch.split(torch.arange(query.layout.num_units), self.units_per_group):
            start = self.clock.now()
            pixels = query.pixels_for(chunk)
            if trace is not None:
                trace.add_seconds("decode", self.clock.now() - start)
            start = self.clock.now()
            parts.append(copy_to_store(self.adapter.encode(pixels), store, copies))
            if trace is not None:
                trace.add_seconds("vision", self.clock.now() - start)
        copies.wait()
        return torch.cat(parts)

    def _group_pass(self, query: Query, group: GroupEvidence, video_features: torch.Tensor | None = None,
                    copies: PendingCopies | None = None,
                    make_room: Callable[[GroupEvidence], int | None] | None = None) -> None:
        """Encode one group (or take its rows of `video_features`), run its prefill, fill `group` with scores
        (on the CPU), entropy (None for the early-layer pass), ranked candidates, seconds. Candidate features
        copied to the CPU store without blocking are recorded in `copies` (None: complete on return).
        `make_room(group)`: see `keep_candidates`."""
        adapter, config, model, clock = self.adapter, self.config, self.model, self.clock
        if video_features is not None:
            features = video_features[group.token_ids.to(video_features.device)]
        else:
            start = clock.now()
            pixels = query.pixels_for(group.units)
            group.seconds["decode"] = clock.now() - start
            start = clock.now()
            features = adapter.encode(pixels)
            group.seconds["vision"] = clock.now() - start

        start = clock.now()
        inputs = adapter.model_inputs(query.prompt, query.layout, group.token_ids, features)
        columns = adapter.visual_columns(query.prompt, query.layout, group.token_ids)
        early = self.selector.early_layer_pass
        layer = config.early_layer if early else self.scoring_layer
        # the early-layer pass (FastV): the last text token's attention, and the forward ends at that layer
        n_query = 1 if early else len(query.prompt.suffix_ids)
        with capture_scores(adapter, layer, n_query=n_query, columns=columns, reduce=config.score_reduce,
                            seq_len=_sequence_length(inputs), stop=early, clock=clock) as capture:
            if early:
                try:
                    model(**inputs, logits_to_keep=1, use_cache=False)
                except ScoresCaptured:
                    pass
                group.entropy = None
            else:
                group.entropy = _group_entropy(model, inputs, config, query.option_ids)
        if capture.scores is None:
            raise RuntimeError(f"the scoring hook on layer {layer} did not fire during the group prefill")
        # to the host only now that the forward has ended (the hook keeps them on the device: a copy there would
        # wait for every kernel queued before it); what is left to wait for is the prefill's own last kernels
        scores = capture.scores.cpu()
        group.seconds["prefill"] = clock.now() - start - capture.seconds
        group.seconds["scoring"] = capture.seconds

        keep = min(group.num_tokens, math.ceil(config.overselect * config.budget))  # no group can be given more
        store = "cpu" if config.feature_store == "cpu" else features.device
        keep_candidates(group, scores, features, keep, store, copies, make_room)
        # tensor parallelism, before should_stop (ranks that disagree would run different numbers of passes). The
        # features are checked too: the all-reduces make the text rows identical even when one rank's video differs.
        if tensor_parallel_of(model) is not None:  # (the feature sum is not worth computing in one process)
            check_ranks_agree(model, f"group {group.group_id}'s pass (visual features, entropy, scores)",
                              features.float().sum(0), group.entropy, group.scores, group.candidate_ids)

    def _kept_features(self, query: Query, groups: list[GroupEvidence], kept: torch.Tensor,
                       trace: Trace) -> torch.Tensor:
        """Features (K, D) of the kept tokens, in kept order: from the candidate store where the group
        passes left them; the others (no group pass, or tokens of groups never passed) encoded now."""
        stored = [g for g in groups if g.candidate_ids is not None and len(g.candidate_ids)]
        if not stored:
            return self._encode_tokens(query, kept, trace)
        # gathered group by group into one (K, D) output: never a copy of the whole store
        sample = stored[0].candidate_features
        out = sample.new_empty((len(kept), sample.shape[1]))
        found = torch.zeros(len(kept), dtype=torch.bool)
        for group in stored:
            hit = torch.isin(group.candidate_ids, kept) & ~torch.isin(group.candidate_ids, kept[found])
            if bool(hit.any()):
                rows = torch.searchsorted(kept, group.candidate_ids[hit])
                out[rows.to(out.device)] = group.candidate_features[hit.to(group.candidate_features.device)].to(
                    out.device)
                found[rows] = True
        if bool(found.all()):
            return out
        out[(~found).to(out.device)] = self._encode_tokens(query, kept[~found], trace).to(out.device, out.dtype)
        return out

    def _encode_tokens(self, query: Query, kept: torch.Tensor, trace: Trace) -> torch.Tensor:
        """Features (K, D) of the tokens `kept` (ascending), encoded now, a group's worth of units at a time."""
        layout = query.layout
        units = torch.unique(layout.unit_of(kept))
        parts = []
        for chunk in torch.split(units, self.units_per_group):
            start = self.clock.now()
            pixels = query.pixels_for(chunk)
            trace.add_seconds("decode", self.clock.now() - start)
            start = self.clock.now()
            feats = self.adapter.encode(pixels)
            trace.add_seconds("vision", self.clock.now() - start)
            chunk_ids = layout.token_ids_of_units(chunk)
            wanted = kept[(kept >= chunk_ids[0]) & (kept <= chunk_ids[-1])]
            parts.append(feats[torch.searchsorted(chunk_ids, wanted).to(feats.device)])
        return torch.cat(parts)


def candidate_bytes(group: GroupEvidence) -> int:
    """Bytes of a group's ranked candidates: their ids (K_g,) and features (K_g, D)."""
    return sum(t.numel() * t.element_size() for t in (group.candidate_ids, group.candidate_features) if t is not None)


def _bound_candidates(groups: list[GroupEvidence], bounds: list[int] | None,
                      copies: PendingCopies | None = None) -> int:
    """Keep at most `bounds[i]` ranked candidates of group i (a copy, so the dropped rows' memory is freed; the
    `copies` still pending into the store, if any, are waited for first); returns the bytes dropped."""
    if bounds is None:
        return 0
    dropped = 0
    for group, bound in zip(groups, bounds):
        if group.candidate_ids is not None and bound < len(group.candidate_ids):
            if copies is not None:
                copies.wait()
            before = candidate_bytes(group)
            group.candidate_ids = group.candidate_ids[:bound].clone()
            group.candidate_features = group.candidate_features[:bound].clone()
            dropped += before - candidate_bytes(group)
    return dropped


def _with_merged(features: torch.Tensor, kept: torch.Tensor, selection: Selection) -> torch.Tensor:
    """`features` (K, D) of the kept tokens with the rows of merged tokens replaced by their merged features."""
    if selection.merged_ids is None or len(selection.merged_ids) == 0:
        return features
    merged = selection.merged_ids.to(kept.device)
    rows = torch.searchsorted(kept, merged)
    if bool((rows >= len(kept)).any()) or not torch.equal(kept[rows.clamp(max=len(kept) - 1)], merged):
        raise ValueError("Selection.merged_ids must be among the kept token ids")
    if selection.merged_features is None or selection.merged_features.shape != (len(merged), features.shape[1]):
        raise ValueError(f"Selection.merged_features must be ({len(merged)}, {features.shape[1]}): one row per "
                         "merged id")
    out = features.clone()
    out[rows.to(out.device)] = selection.merged_features.to(out.device, out.dtype)
    return out


def replay_visits(selector: Selector, groups: list[GroupEvidence]) -> list[GroupEvidence]:
    """The groups `selector` would have visited, given the evidence of every group: its stop rule replayed in
    visiting order (Lite: until a group is confident enough); selectors without group passes: every group."""
    if not selector.needs_group_pass:
        return groups
    seen: list[GroupEvidence] = []
    for group in groups:
        seen.append(group)
        if selector.should_stop(seen, len(groups)):
            break
    return seen


class IgnoredSettingWarning(UserWarning):
    """A setting was changed from its default but the chosen selector does not read it."""


def ignored_settings(config: AdaptTokenConfig) -> list[str]:
    """Selection and group-pass settings that differ from their defaults and that `config.selector` does not
    read (from its declaration, `Selector.settings_read`): `theta` with `adapttoken`, `tau` with `uniform`."""
    read = set(SELECTORS.get(config.selector).settings_read())
    return [f.name for f in setting_fields()
            if f.metadata["phase"] in ("selection", "group pass") and f.name != "selector"
            and f.name not in read and getattr(config, f.name) != f.default]


def warn_ignored_settings(config: AdaptTokenConfig) -> None:
    """Warn (`IgnoredSettingWarning`) about each setting `ignored_settings` finds."""
    for name in ignored_settings(config):
        warnings.warn(f"{name}={getattr(config, name)!r} has no effect with selector {config.selector!r}, which "
                      f"reads {list(SELECTORS.get(config.selector).settings_read())}", IgnoredSettingWarning,
                      stacklevel=3)


def keep_candidates(group: GroupEvidence, scores: torch.Tensor, features: torch.Tensor, keep: int,
                    store: str | torch.device, copies: PendingCopies | None = None,
                    limit: Callable[[GroupEvidence], int | None] | None = None) -> None:
    """Fill `group` with its scores (N_g,) and its `keep` best-scored tokens (ties to the earlier token) with
    their features ((N_g, D) in, (keep, D) kept on `store`). From a GPU to a CPU store the features are copied
    into pinned memory without blocking: readable once `copies.wait()` returned (None: before this returns).
    `limit(group)`, asked once the group's scores and ranked ids are set and before any feature is gathered
    (`candidate_features` is None then): how many of them it can still need, if fewer (None: `keep`)."""
    group.scores = scores
    order = torch.argsort(scores, descending=True, stable=True)[:keep]
    group.candidate_ids, group.candidate_features = group.token_ids[order], None
    fewer = None if limit is None else limit(group)
    if fewer is not None and fewer < len(order):
        order = order[:fewer]
        group.candidate_ids = group.candidate_ids[:fewer].clone()
    pending = PendingCopies() if copies is None else copies
    group.candidate_features = copy_to_store(features[order.to(features.device)], store, pending)
    if copies is None:
        pending.wait()


def _prompt_ids(prompt: PromptParts) -> torch.Tensor:
    """Every token id of the prompt's text, for the rank-consistency check."""
    return torch.cat([prompt.prefix_ids, prompt.suffix_ids, *(prompt.unit_heads or []), *(prompt.unit_tails or [])])


def _sequence_length(inputs: dict[str, Any]) -> int:
    """Length of the sequence `adapter.model_inputs` built: from `input_ids`, or `inputs_embeds` (LLaVA-NeXT)."""
    return (inputs["input_ids"] if "input_ids" in inputs else inputs["inputs_embeds"]).shape[1]


def _group_entropy(model, inputs: dict[str, Any], config: AdaptTokenConfig, option_ids) -> float:
    """Answer entropy (nats) of one group pass, by `config.entropy_mode`."""
    if config.entropy_mode == "generated":
        out = model.generate(**inputs, max_new_tokens=config.entropy_max_new_tokens, do_sample=False,
                             output_logits=True, return_dict_in_generate=True)
        per_token = entropy(torch.stack([step[0] for step in out.logits]))
        return least_certain_mean(per_token, config.entropy_top_fraction)
    logits = model(**inputs, logits_to_keep=1, use_cache=False).logits[0, -1]
    if config.entropy_mode == "options":
        return float(restricted_entropy(logits, option_ids))
    return float(entropy(logits))
