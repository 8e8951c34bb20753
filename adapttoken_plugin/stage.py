"""The selector stage: group passes, selection, and the kept tokens' features, for any adapter.

    groups (interleaved frame units) -> per group: encode, one prefill with the question
    (attention scores + answer entropy), keep the top candidates -> selector.select -> features of
    the kept tokens in temporal order -> the caller runs the final pass.

Both entry points use it: the `generate`/`forward` wrappers installed by `enable` (video already
preprocessed in memory) and the streaming `Pipeline` (frames decoded group by group).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .adapters.base import ModelAdapter, PromptParts
from .config import AdaptTokenConfig
from .distributed import check_ranks_agree, tensor_parallel_of
from .entropy import entropy, least_certain_mean, restricted_entropy
from .errors import ConfigError, OptionsRequiredError
from .layout import GroupEvidence, VideoLayout, interleaved_groups
from .registry import SELECTORS
from .scoring import capture_scores
from .selectors.base import Selector
from .trace import GroupTrace, Trace

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


def check_entropy_inputs(config: AdaptTokenConfig, option_ids: Sequence[int] | None) -> None:
    if config.entropy_mode == "options" and not option_ids:
        raise OptionsRequiredError(
            "entropy_mode='options' needs the answer options: pass options (Pipeline.answer) or "
            "adapttoken_option_ids (generate), or use entropy_mode='first_token'"
        )


@dataclass
class Evidence:
    """What the group passes learnt: every group of the video, the prefix that was visited, the trace so far."""

    groups: list[GroupEvidence]
    visited: list[GroupEvidence]
    trace: Trace


@torch.no_grad()
def run_stage(
    model: Any,
    adapter: ModelAdapter,
    config: AdaptTokenConfig,
    prompt: PromptParts,
    layout: VideoLayout,
    pixels_for: PixelsFor,
    option_ids: Sequence[int] | None = None,
    on_group: Callable[[GroupEvidence, int], None] | None = None,
) -> StageResult:
    """Select visual tokens of one video for one prompt (batch 1).

    `pixels_for(units)` returns the encoder inputs of some frame units; `on_group(group, num_groups)`
    is called after each group pass.
    """
    selector = SELECTORS.get(config.selector)(config)
    evidence = collect_evidence(model, adapter, config, prompt, layout, pixels_for, option_ids, on_group, selector)
    return finish_selection(adapter, config, layout, evidence, pixels_for, selector)


@torch.no_grad()
def collect_evidence(
    model: Any,
    adapter: ModelAdapter,
    config: AdaptTokenConfig,
    prompt: PromptParts,
    layout: VideoLayout,
    pixels_for: PixelsFor,
    option_ids: Sequence[int] | None = None,
    on_group: Callable[[GroupEvidence, int], None] | None = None,
    selector: Selector | None = None,
) -> Evidence:
    """Run the group passes the selector needs (all groups, or until `selector.should_stop`).

    Scores, entropies and the features of each group's best ceil(overselect * budget) tokens do not
    depend on the budget below that, tau or theta: evidence collected once serves every such setting.
    """
    check_entropy_inputs(config, option_ids)
    selector = selector or SELECTORS.get(config.selector)(config)
    units_per_group = _units_per_group(adapter, config)
    groups = [
        GroupEvidence(g, units, layout.token_ids_of_units(units))
        for g, units in enumerate(interleaved_groups(layout.num_units, units_per_group))
    ]
    trace = empty_trace(config, layout)
    # tensor parallelism: every rank must run the same question with the same settings (no-op otherwise)
    check_ranks_agree(model, "the settings and prompt", config.to_dict(), _prompt_ids(prompt), layout.num_units,
                      layout.tokens_per_unit, list(option_ids or []))
    if not selector.needs_group_pass:
        return Evidence(groups, groups, trace)
    layer = resolve_scoring_layer(adapter, config)
    visited: list[GroupEvidence] = []
    for group in groups:
        _group_pass(model, adapter, config, prompt, layout, pixels_for, group, layer, option_ids)
        for stage, seconds in group.seconds.items():
            trace.add_seconds(stage, seconds)
        visited.append(group)
        if on_group is not None:
            on_group(group, len(groups))
        if selector.should_stop(visited, len(groups)):
            break
    return Evidence(groups, visited, trace)


def empty_trace(config: AdaptTokenConfig, layout: VideoLayout) -> Trace:
    """The trace of a selection on this layout before any group pass."""
    return Trace(
        selector=config.selector, config=config.to_dict(), num_frames=layout.num_units * layout.frames_per_unit,
        num_units=layout.num_units, tokens_per_unit=layout.tokens_per_unit, total_tokens=layout.num_tokens,
        grid_w=layout.grid_w, frame_indices=None if layout.frame_indices is None else list(layout.frame_indices),
    )


def replay_visits(selector: Selector, groups: list[GroupEvidence]) -> list[GroupEvidence]:
    """The groups `selector` would have visited, given the evidence of every group (Lite: until it stops).

    Lets evidence collected once over all groups serve any theta / min_groups: the stop rule is
    replayed in visiting order. Selectors without group passes get every group (they read none of it).
    """
    if not selector.needs_group_pass:
        return groups
    seen: list[GroupEvidence] = []
    for group in groups:
        seen.append(group)
        if selector.should_stop(seen, len(groups)):
            break
    return seen


@torch.no_grad()
def finish_selection(
    adapter: ModelAdapter,
    config: AdaptTokenConfig,
    layout: VideoLayout,
    evidence: Evidence,
    pixels_for: PixelsFor,
    selector: Selector | None = None,
) -> StageResult:
    """Select from the evidence and gather the kept tokens' features; the evidence is not modified."""
    selector = selector or SELECTORS.get(config.selector)(config)
    trace = dataclasses.replace(evidence.trace, selector=config.selector, config=config.to_dict(), groups=[],
                                seconds=dict(evidence.trace.seconds))
    visited = evidence.visited
    start = time.perf_counter()
    selection = selector.select(layout, visited)
    trace.add_seconds("allocation", time.perf_counter() - start)
    kept = selection.kept_token_ids
    check_ranks_agree(adapter.model, "the selection (kept tokens)", kept, list(selection.group_budgets or []))
    units_per_group = _units_per_group(adapter, config)
    features = _kept_features(adapter, layout, visited, kept, pixels_for, units_per_group, trace)

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


def _prompt_ids(prompt: PromptParts) -> torch.Tensor:
    """Every token id of the prompt's text, for the rank-consistency check."""
    return torch.cat([prompt.prefix_ids, prompt.suffix_ids, *(prompt.unit_heads or []), *(prompt.unit_tails or [])])


def _units_per_group(adapter: ModelAdapter, config: AdaptTokenConfig) -> int:
    """Frame units per group: `frames_per_group` rounded down to whole units (at least one)."""
    return max(1, config.frames_per_group // adapter.frames_per_unit)


def _group_pass(model, adapter, config, prompt, layout, pixels_for, group, layer, option_ids) -> None:
    """Encode one group, run its prefill, fill `group` with scores, entropy, ranked candidates, seconds."""
    start = time.perf_counter()
    pixels = pixels_for(group.units)
    group.seconds["decode"] = time.perf_counter() - start

    start = time.perf_counter()
    features = adapter.encode(pixels)
    group.seconds["vision"] = time.perf_counter() - start

    start = time.perf_counter()
    inputs = adapter.model_inputs(prompt, layout, group.token_ids, features, config.position_rule,
                                  config.positions_1d)
    n_visual = group.num_tokens
    columns = adapter.visual_columns(prompt, layout, group.token_ids)
    with capture_scores(adapter, layer, n_query=len(prompt.suffix_ids), columns=columns,
                        reduce=config.score_reduce, seq_len=_sequence_length(inputs)) as capture:
        group.entropy = _group_entropy(model, inputs, config, option_ids)
    group.seconds["prefill"] = time.perf_counter() - start - capture.seconds
    group.seconds["scoring"] = capture.seconds
    if capture.scores is None:
        raise RuntimeError(f"the scoring hook on layer {layer} did not fire during the group prefill")

    group.scores = capture.scores
    keep = min(n_visual, math.ceil(config.overselect * config.budget))  # no group can be given more
    order = torch.argsort(group.scores, descending=True, stable=True)[:keep]
    group.candidate_ids = group.token_ids[order]
    store = "cpu" if config.feature_store == "cpu" else features.device
    group.candidate_features = features[order.to(features.device)].to(store)
    # tensor parallelism, before should_stop (ranks that disagree would run different numbers of passes). The
    # features are checked too: the all-reduces make the text rows identical even when one rank's video differs.
    if tensor_parallel_of(model) is not None:  # (the feature sum is not worth computing in one process)
        check_ranks_agree(model, f"group {group.group_id}'s pass (visual features, entropy, scores)",
                          features.float().sum(0), group.entropy, group.scores, group.candidate_ids)


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


def _kept_features(adapter, layout, visited, kept, pixels_for, units_per_group, trace) -> torch.Tensor:
    """Features (K, D) of the kept tokens, in kept order: from the candidate store where the group
    passes left them, else encoded now, a group's worth of units at a time."""
    stored = [g for g in visited if g.candidate_ids is not None]
    if stored:
        ids = torch.cat([g.candidate_ids for g in stored])
        feats = torch.cat([g.candidate_features.to(stored[0].candidate_features.device) for g in stored])
        order = torch.argsort(ids)
        ids, position = ids[order], torch.searchsorted(ids[order], kept)
        if len(kept) == 0 or (position < len(ids)).all() and (ids[position.clamp(max=len(ids) - 1)] == kept).all():
            return feats[order[position].to(feats.device)]
    units = torch.unique(layout.unit_of(kept))
    parts = []
    for chunk in torch.split(units, units_per_group):
        start = time.perf_counter()
        pixels = pixels_for(chunk)
        trace.add_seconds("decode", time.perf_counter() - start)
        start = time.perf_counter()
        feats = adapter.encode(pixels)
        trace.add_seconds("vision", time.perf_counter() - start)
        chunk_ids = layout.token_ids_of_units(chunk)
        wanted = kept[(kept >= chunk_ids[0]) & (kept <= chunk_ids[-1])]
        parts.append(feats[torch.searchsorted(chunk_ids, wanted).to(feats.device)])
    return torch.cat(parts)
