"""The resumable sweep: every grid point on every item, each finished run appended to results.jsonl.

Per item, the group passes run once per (frames_per_group, scoring_layer) with the largest budget of
the grid (so every smaller budget reads a prefix of the same ranked candidates), or come from the
evidence cache; each run then re-does only its selection (Lite's stop rule replayed over the evidence
with its theta) and its final pass. A restart skips the runs already in results.jsonl.

Seconds per run are composed from measured parts: the video setup and the group passes the selector
needs (Lite: the groups until it stops), both measured when the evidence was collected, plus the
run's own selection and final pass, measured now.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import EVIDENCE_PHASES, AdaptTokenConfig, settings_in
from ..errors import OutputInUseError
from ..layout import VideoLayout
from ..pipeline import Pipeline, VideoPlan, VideoSession, format_question
from ..registry import SELECTORS
from ..stage import Evidence, IgnoredSettingWarning, Query, Stage
from ..video import video_key_of_file
from ..video.reader import describe_backend
from .datasets import Item
from .evidence_cache import CachedEvidence, EvidenceCache, candidates_needed, file_sha256, model_identity
from .grid import AXES, Grid, RunSpec, expand_grid, resolve_budget
from .results import ResultsLog, write_outputs


@dataclass
class SweepReport:
    """What one invocation did. `rows`: every run of the grid (finished now or before), in grid order."""

    rows: list[dict[str, Any]]
    ran: int
    skipped: int
    cache_hits: int
    cache_misses: int
    cache_hit_rate: float | None
    group_passes: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("rows")
        out["runs"] = len(self.rows)
        return out


class _LazyVideo:
    """Plans the video on first use of `plan`, decodes it on first use of its pixels: a sweep served from the
    cache never decodes it (the per-frame prompt text of Qwen3-VL / InternVL needs only the plan)."""

    def __init__(self, pipe: Pipeline, path: Path) -> None:
        self.pipe, self.path = pipe, path
        self._plan: VideoPlan | None = None
        self.session: VideoSession | None = None
        self._stack = ExitStack()

    @property
    def plan(self) -> VideoPlan:
        if self._plan is None:
            self._plan = self.pipe.plan_video(self.path)
        return self._plan

    def open(self) -> VideoSession:
        if self.session is None:
            self.session = self._stack.enter_context(self.pipe.decode(self.plan))
        return self.session

    def pixels_for(self, units: torch.Tensor) -> dict[str, Any]:
        return self.open().pixels_for(units)

    def __enter__(self) -> _LazyVideo:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def _pass_kind(selector_class: type) -> str:
    """Which group passes a selector's evidence comes from: "early layer" or the full "group" passes."""
    return "early layer" if selector_class.early_layer_pass else "group"


#: the lock a running sweep holds in its output folder (the file records its process id)
LOCK_FILE = ".sweep.lock"


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the block; OutputInUseError if another process
    holds it. The operating system releases it when the holder ends, however it ends (no stale lock to remove)."""
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): sweeps on one folder are the user's to keep apart
        yield
        return
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise OutputInUseError(f"another sweep ({holder}) is writing to {str(path.parent)!r}: wait for it "
                                   "to finish (then run this one again to resume), or give this one another "
                                   "--out") from None
        try:
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()}")
            f.flush()
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _pipeline(model: Any, processor: Any, config: AdaptTokenConfig, backend: str) -> Pipeline:
    """A Pipeline for the sweep's prompts and videos: its base config names no run's selector, so a setting
    that selector ignores is no reason to warn (each run's Stage gets only the axes its selector reads)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IgnoredSettingWarning)
        return Pipeline(model, processor, config, backend)


class Sweep:
    """A grid over items. `on_run(row)` is called after each run is saved (progress; tests interrupt here)."""

    def __init__(self, model: Any, processor: Any, base: AdaptTokenConfig, grid: Grid, items: list[Item],
                 out: str | Path, cache: str | Path | None = None, max_new_tokens: int = 4, backend: str = "auto",
                 on_run: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.model, self.processor, self.base, self.grid, self.items = model, processor, base, grid, items
        self.out = Path(out)
        self.cache = EvidenceCache(Path(cache) if cache is not None else self.out / "evidence")
        self.max_new_tokens, self.backend, self.on_run = max_new_tokens, backend, on_run
        self.identity = model_identity(model, processor)
        self.group_passes = 0
        probe = _pipeline(model, processor, base, backend)
        self.specs = expand_grid(grid, base, probe.stage.scoring_layer)

    def run(self) -> SweepReport:
        """Every pending run, appended to `<out>/results.jsonl` as it finishes, then the outputs. Raises
        OutputInUseError when another sweep is running on the same folder (it would compute the same runs)."""
        self.out.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.out / LOCK_FILE):
            return self._run()

    def _run(self) -> SweepReport:
        start = time.perf_counter()
        log = ResultsLog(self.out / "results.jsonl")
        done = log.load()
        order, ran, skipped = [], 0, 0
        for item in self.items:
            video_sha = file_sha256(item.video)
            ids = [self._run_id(item, video_sha, spec) for spec in self.specs]
            order += ids
            pending = [(spec, rid) for spec, rid in zip(self.specs, ids) if rid not in done]
            skipped += len(self.specs) - len(pending)
            if pending:
                for row in self._run_item(item, video_sha, pending):
                    log.append(row)
                    done[row["run_id"]] = row
                    ran += 1
                    if self.on_run is not None:
                        self.on_run(row)
        report = SweepReport([done[rid] for rid in order], ran, skipped, self.cache.hits, self.cache.misses,
                             self.cache.hit_rate, self.group_passes, time.perf_counter() - start)
        write_outputs(self.out, report.rows, report.to_dict())
        return report

    def _run_id(self, item: Item, video_sha: str, spec: RunSpec) -> str:
        # the spec carries the selector and the axes; `storage` and `timing` settings never change a result
        left_out = {*AXES, "selector", *settings_in("storage", "timing")}
        base = {k: v for k, v in self.base.replace(**item.settings).to_dict().items() if k not in left_out}
        text = json.dumps({"item": [item.item_id, video_sha, item.question, item.options, item.answer],
                           "spec": spec.to_dict(), "base": base, "model": self.identity,
                           "backend": describe_backend(self.backend),
                           "max_new_tokens": self.max_new_tokens}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _run_item(self, item: Item, video_sha: str, pending: list[tuple[RunSpec, str]]):
        """Rows of the pending runs of one item; the video is decoded only if a run needs pixels."""
        config = self.base.replace(**item.settings)
        pipe = _pipeline(self.model, self.processor, config, self.backend)
        prompt_text = format_question(item.question, item.options)
        option_ids = pipe.option_token_ids(len(item.options))
        evidence: dict[tuple[str, int, int], tuple[CachedEvidence, str]] = {}
        video_features: list[tuple[torch.Tensor, float]] = []  # the item's features, encoded once for all runs
        with _LazyVideo(pipe, item.video) as video:
            # per-frame prompt text (Qwen3-VL timestamps, InternVL labels) is made from the plan: no frame decoded
            prompt = pipe.prompt_parts(prompt_text, video.plan if pipe.prompt_needs_video else None)
            for spec, run_id in pending:
                selector_class = SELECTORS.get(spec.selector)
                if spec.needs_group_pass:
                    where = (_pass_kind(selector_class), spec.scoring_layer, spec.frames_per_group)
                    if where not in evidence:
                        evidence[where] = self._evidence(pipe, config, video, video_sha, prompt_text, prompt,
                                                         option_ids, *where)
                    cached, status = evidence[where]
                    layout, setup = cached.layout, cached.setup_seconds
                else:
                    session = video.open()  # before the clock: setup is counted once, as `setup_seconds`
                    layout, setup, status = session.layout, session.setup_seconds, "-"
                cfg = spec.config(config, layout.num_tokens)
                stage = Stage(self.model, pipe.adapter, cfg, warn=False)  # the grid gives each selector its own axes
                query = Query(prompt, layout, video.pixels_for, option_ids, video_key_of_file(item.video))
                feature_pass = 0.0
                features = None
                if selector_class.needs_features:  # one vision pass over the video, shared by the item's runs
                    if not video_features:
                        start = stage.clock.now()
                        video_features.append((stage.encode_video(query), 0.0))
                        video_features[0] = (video_features[0][0], stage.clock.now() - start)
                    features, feature_pass = video_features[0]
                if spec.needs_group_pass:
                    evidence_now = stage.replay(Evidence(cached.groups, cached.groups, stage.empty_trace(layout),
                                                         features))
                    passes = sum(sum(g.seconds.values()) for g in evidence_now.visited)
                else:
                    evidence_now, passes = stage.collect_evidence(query, features=features), 0.0  # no model call
                groups, visited = evidence_now.groups, evidence_now.visited
                start = stage.clock.now()
                result = stage.finish(query, evidence_now)
                answer = pipe.generate_answer(prompt, layout, result, item.options, self.max_new_tokens)
                own = stage.clock.now() - start
                yield {
                    "run_id": run_id, "item_id": item.item_id, "subset": item.subset, **spec.to_dict(),
                    "budget": "all" if spec.budget is None else spec.budget,
                    "budget_tokens": layout.num_tokens if spec.budget is None else cfg.budget,
                    "total_tokens": layout.num_tokens,
                    "kept": result.trace.kept_tokens, "groups": len(groups),
                    "groups_visited": len(visited) if spec.needs_group_pass else 0,
                    "letter": answer.letter, "answer": item.answer, "correct": answer.letter == item.answer,
                    "seconds": setup + feature_pass + passes + own, "setup_seconds": setup,
                    "feature_pass_seconds": feature_pass, "group_pass_seconds": passes,
                    "final_seconds": own, "evidence": status,
                    "kept_sha256": hashlib.sha256(result.token_ids.numpy().tobytes()).hexdigest()[:16],
                }

    def _evidence(self, pipe, config, video, video_sha, prompt_text, prompt, option_ids, kind, layer,
                  frames_per_group):
        """Every group's evidence for one (kind of pass, scoring layer, frames per group): from the cache, else
        collected (`kind`: "group" for the full group passes, "early layer" for the early-layer pass)."""
        key = self._evidence_key(config, video_sha, prompt_text, prompt, option_ids, layer, frames_per_group)
        key["pass"] = kind
        peers = [s for s in self.specs if s.needs_group_pass and (_pass_kind(SELECTORS.get(s.selector)),
                 s.scoring_layer, s.frames_per_group) == (kind, layer, frames_per_group)]

        def largest_budget(layout: VideoLayout) -> int:  # every budget of the grid that reads this evidence
            return max(resolve_budget(s.budget, layout.num_tokens) for s in peers)

        cached = self.cache.get(key, lambda layout: candidates_needed(config.overselect, largest_budget(layout)))
        if cached is not None:
            return cached, "hit"
        session = video.open()
        budget = largest_budget(session.layout)
        # the full passes are collected as AdaptToken runs them (every group); the early-layer pass as the first
        # early-layer selector of the grid does (any: they share the pass)
        collector = "adapttoken" if kind == "group" else peers[0].selector
        collect = config.replace(selector=collector, budget=budget, scoring_layer=layer,
                                 frames_per_group=frames_per_group, feature_store="cpu")
        found = Stage(self.model, pipe.adapter, collect, warn=False).collect_evidence(
            Query(prompt, session.layout, video.pixels_for, option_ids))
        self.group_passes += len(found.groups)
        cached = CachedEvidence(session.layout, found.groups, candidates_needed(config.overselect, budget),
                                session.setup_seconds)
        self.cache.put(key, cached)
        return cached, "miss"

    def _evidence_key(self, config, video_sha, prompt_text, prompt, option_ids, layer,
                      frames_per_group) -> dict[str, Any]:
        """Everything the group passes depend on (see evidence_cache.py): every setting of EVIDENCE_PHASES (from
        the config schema, so a new group-pass setting is in the key without a change here), the resolved
        scoring layer and frames per group of this evidence, the video, model, prompt and option ids."""
        key = {name: getattr(config, name) for name in settings_in(*EVIDENCE_PHASES)}
        key |= {
            "video_sha256": video_sha, "backend": describe_backend(self.backend), "model": self.identity,
            "prompt": prompt_text,
            "prompt_ids": [prompt.prefix_ids.tolist(), prompt.suffix_ids.tolist()],  # chat template and tokenizer
            "frames_per_group": frames_per_group, "scoring_layer": layer,
        }
        if config.entropy_mode == "options":
            key["option_ids"] = list(option_ids)
        return key
