"""Needle benchmark, every strategy head to head: does selection find the evidence? Accuracy (95% bootstrap
interval), needle kept, seconds per question by stage, groups visited and peak memory.

For every question (synthetic needle videos written as mp4 and decoded like user videos) the group
passes run once; every selector and budget then selects from that evidence and runs its own final
pass (scores, entropies and candidate features do not depend on the budget, tau or theta). Seconds
per question are composed from what was measured: video setup + the group passes the selector
needs (all groups; Lite: the groups until it stops; FastV: its early-layer passes; none for
full/uniform/random/oracle and the feature-only strategies) + the vision pass over the whole video for the
strategies that need every token's features + its selection, feature gathering and final pass. The `oracle`
is given the needle's frames. Peak memory: one `Pipeline.answer` per strategy and length in a fresh process.

    python scripts/bench_needle.py                                   # 210 questions, bundled toy model
    python scripts/bench_needle.py --questions 30 --lengths 256 1024 --out runs/needle_small

Writes <out>/results.json (every run), <out>/summary.json, <out>/table.md and <out>/needle.png.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from adapttoken_plugin import SELECTORS, AdaptTokenConfig
from adapttoken_plugin.ablation.stats import bootstrap_interval
from adapttoken_plugin.layout import GroupEvidence, Selection, VideoLayout
from adapttoken_plugin.needle import VIDEO_FPS, NeedleQuestion, question_set, write_video_file
from adapttoken_plugin.pipeline import Pipeline, format_question
from adapttoken_plugin.selectors.base import Selector
from adapttoken_plugin.stage import Query, Stage
from adapttoken_plugin.video import video_key_of_file

STAGE_SECONDS = ("setup_seconds", "feature_pass_seconds", "group_pass_seconds", "final_seconds")


def selectors_run() -> tuple[str, ...]:
    """Every registered strategy, AdaptToken's first, then the oracle (this benchmark's upper bound)."""
    first = ("full", "uniform", "random", "attention-topk", "adapttoken", "adapttoken-lite")
    return (*[n for n in first if n in SELECTORS], *[n for n in SELECTORS.names() if n not in first], "oracle")


class OracleSelector(Selector):
    """Upper bound: every token of the frame units that hold the needle, then evenly spaced units."""

    needs_group_pass = False

    def __init__(self, config: AdaptTokenConfig, needle_units: list[int]) -> None:
        super().__init__(config)
        self.needle_units = needle_units

    def select(self, layout: VideoLayout, groups: list[GroupEvidence]) -> Selection:
        needle = layout.token_ids_of_units(torch.tensor(self.needle_units))
        others = SELECTORS.get("uniform")(self.config).select(layout, groups).kept_token_ids
        others = others[~torch.isin(others, needle)]
        kept = torch.cat([needle, others])[: self.config.budget]
        return Selection(torch.sort(kept).values, None)


def load_model(path: str | None):
    from adapttoken_plugin.toy import load_needle_model

    if path is None:
        return load_needle_model()
    from transformers import AutoModelForImageTextToText, AutoProcessor

    return AutoModelForImageTextToText.from_pretrained(path).eval(), AutoProcessor.from_pretrained(path)


def collect_evidence_once(model, pipe, query, largest: AdaptTokenConfig, selectors) -> tuple[dict, object, float]:
    """Each kind of evidence the `selectors` read, once per question, for every selector and budget that reads
    it: ({"group": ..., "early layer": ...}, every token's features or None, their seconds)."""
    evidence = {"group": Stage(model, pipe.adapter, largest).collect_evidence(query)}
    early = [n for n in selectors if n in SELECTORS and SELECTORS.get(n).early_layer_pass]
    if early:
        evidence["early layer"] = Stage(model, pipe.adapter, largest.replace(selector=early[0]),
                                        warn=False).collect_evidence(query)
    features, feature_seconds = None, 0.0
    if any(n in SELECTORS and SELECTORS.get(n).needs_features for n in selectors):
        start = time.perf_counter()
        features = Stage(model, pipe.adapter, largest).encode_video(query)
        feature_seconds = time.perf_counter() - start
    return evidence, features, feature_seconds


@dataclasses.dataclass
class OpenQuestion:
    """One question's video opened, with the evidence every strategy replays (`open_question`)."""

    model: object
    base: AdaptTokenConfig
    pipe: Pipeline
    session: object  # the pipeline's open video
    query: Query
    options: list[str]
    budgets: dict[int, int]  # budget fraction F -> tokens (all tokens // F)
    evidence: dict
    features: object
    feature_seconds: float

    @property
    def layout(self) -> VideoLayout:
        return self.query.layout

    def units_of_frames(self, frames) -> list[int]:
        """The frame units (ascending) that hold any of these source frame indices."""
        wanted = set(frames)
        return sorted({i // self.layout.frames_per_unit for i, f in enumerate(self.layout.frame_indices)
                       if f in wanted})

    def answer(self, config: AdaptTokenConfig, oracle_units: list[int] | None = None):
        """`config`'s selector (the oracle of `oracle_units` when given) replayed on the evidence it reads, then
        the final pass: (selector, result, answer, the evidence kind replayed, groups visited, seconds of
        {feature pass, group passes, selection and final pass})."""
        stage = Stage(self.model, self.pipe.adapter, config, warn=False)
        if oracle_units is not None:  # not a registered strategy: the upper bound of a benchmark only
            stage.selector = OracleSelector(config, oracle_units)
        selector = stage.selector
        kind = self.evidence["early layer" if selector.early_layer_pass else "group"]
        replayed = stage.replay(dataclasses.replace(kind, features=self.features if selector.needs_features else None))
        start = time.perf_counter()
        result = stage.finish(self.query, replayed)
        answer = self.pipe.generate_answer(self.query.prompt, self.layout, result, self.options, max_new_tokens=4)
        seconds = {"feature_pass": self.feature_seconds if selector.needs_features else 0.0,
                   "group_passes": sum(sum(g.seconds.values()) for g in replayed.visited)
                   if selector.needs_group_pass else 0.0,
                   "final": time.perf_counter() - start}
        return selector, result, answer, kind, replayed.visited, seconds


@contextlib.contextmanager
def open_question(model, processor, video: Path, num_frames: int, question: str, options, fractions, selectors,
                  frames_per_group: int):
    """The video opened at `num_frames` frames, the budgets of `fractions`, and the evidence the `selectors`
    read collected once at the largest budget (scores, entropies and features do not depend on the budget)."""
    base = AdaptTokenConfig(fps=VIDEO_FPS, max_frames=num_frames, frames_per_group=frames_per_group,
                            selector="adapttoken")
    pipe = Pipeline(model, processor, base)
    prompt = pipe.prompt_parts(format_question(question, list(options)))
    with pipe.open_video(video) as session:
        budgets = {f: max(1, session.layout.num_tokens // f) for f in fractions}
        query = Query(prompt, session.layout, session.pixels_for, video_key=video_key_of_file(video))
        evidence, features, seconds = collect_evidence_once(model, pipe, query, base.replace(
            budget=max(budgets.values())), selectors)
        yield OpenQuestion(model, base, pipe, session, query, list(options), budgets, evidence, features, seconds)


def run_question(model, processor, q: NeedleQuestion, video: Path, fractions, selectors) -> list[dict]:
    rows = []
    with open_question(model, processor, video, q.num_frames, q.question, q.options, fractions, selectors,
                       frames_per_group=64) as oq:
        total = oq.layout.num_tokens
        needle_units = oq.units_of_frames(q.needle_frames)
        needle_tokens = oq.layout.token_ids_of_units(torch.tensor(needle_units))
        for name in selectors:
            for fraction, budget in ([(1, total)] if name == "full" else oq.budgets.items()):
                cfg = oq.base.replace(selector="full" if name == "oracle" else name, budget=budget)
                selector, result, answer, kind, visited, sec = oq.answer(cfg, needle_units if name == "oracle"
                                                                         else None)
                feature_pass, passes, own = sec["feature_pass"], sec["group_passes"], sec["final"]
                setup = oq.session.setup_seconds
                rows.append({
                    "seed": q.seed, "frames": q.num_frames, "selector": name, "fraction": fraction,
                    "budget": budget, "kept": result.trace.kept_tokens, "total_tokens": total,
                    "correct": answer.letter == q.answer_letter, "letter": answer.letter, "answer": q.answer_letter,
                    "groups": len(kind.groups), "groups_visited": len(visited) if selector.needs_group_pass else 0,
                    "needle_tokens_kept": int(torch.isin(result.token_ids, needle_tokens).sum()),
                    "seconds": setup + feature_pass + passes + own, "setup_seconds": setup,
                    "feature_pass_seconds": feature_pass, "group_pass_seconds": passes, "final_seconds": own,
                })
    return rows


def peak_memory(selector: str, video: Path, frames: int, budget: int, model_path: str | None) -> float | None:
    """Peak RSS over the loaded model (MiB) of one streaming answer with `selector`, in a fresh process."""
    proc = subprocess.run([sys.executable, __file__, "--memory-worker", selector, str(video), str(frames), str(budget),
                           model_path or ""], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"memory run of {selector} at {frames} frames failed: {proc.stderr[-500:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_over_base_mb"]


def memory_worker(selector: str, video: str, frames: int, budget: int, model_path: str) -> dict:
    """One `Pipeline.answer` in this process: peak RSS over the RSS once the model is loaded (the kernel's
    high-water mark, VmHWM, reset after loading, so loading's own peak does not count)."""
    torch.set_num_threads(2)
    model, processor = load_model(model_path or None)
    with open("/proc/self/clear_refs", "w") as f:  # "5": reset this process's peak RSS to its current RSS
        f.write("5")
    base = _rss_mb()
    config = AdaptTokenConfig(selector=selector, fps=VIDEO_FPS, max_frames=frames, budget=budget, frames_per_group=64)
    Pipeline(model, processor, config).answer(video, "What colour?", ["red", "green", "blue", "yellow"],
                                              max_new_tokens=4)
    peak = _status_mb("VmHWM")
    return {"selector": selector, "frames": frames, "peak_over_base_mb": peak - base}


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def summarise(rows: list[dict]) -> list[dict]:
    cells = defaultdict(list)
    for r in rows:
        cells[(r["frames"], r["selector"], r["fraction"])].append(r)
    out = []
    order = selectors_run()
    for (frames, selector, fraction), rs in sorted(cells.items(), key=lambda kv: (kv[0][0], order.index(
            kv[0][1]), -kv[0][2])):
        out.append({
            "frames": frames, "selector": selector, "fraction": fraction, "budget": rs[0]["budget"],
            "questions": len(rs), "accuracy": sum(r["correct"] for r in rs) / len(rs),
            "accuracy_95": list(bootstrap_interval([float(r["correct"]) for r in rs])),
            "kept": sum(r["kept"] for r in rs) / len(rs),
            "seconds_per_question": sum(r["seconds"] for r in rs) / len(rs),
            **{k: sum(r.get(k, 0.0) for r in rs) / len(rs) for k in STAGE_SECONDS},
            "groups_visited": sum(r["groups_visited"] for r in rs) / len(rs), "groups": rs[0]["groups"],
            "needle_found": sum(r["needle_tokens_kept"] > 0 for r in rs) / len(rs),
        })
    return out


def markdown(summary: list[dict], memory: dict) -> str:
    lines = ["| frames | selector | budget | tokens kept | accuracy [95% bootstrap] | needle kept | s / question "
             "| setup / features / group passes / final s | groups visited | peak MiB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        budget = "all" if s["selector"] == "full" else f"1/{s['fraction']} ({s['budget']})"
        visited = f"{s['groups_visited']:.1f} / {s['groups']}" if s["groups_visited"] else "-"
        mem = memory.get(f"{s['selector']}@{s['frames']}") if s["fraction"] in (1, 16) else None
        split = " / ".join(f"{s[k]:.2f}" for k in STAGE_SECONDS)
        low, high = s["accuracy_95"]
        lines.append(f"| {s['frames']} | {s['selector']} | {budget} | {s['kept']:.0f} | {s['accuracy']:.2f} "
                     f"[{low:.2f}, {high:.2f}] | {s['needle_found']:.2f} | {s['seconds_per_question']:.2f} | {split} "
                     f"| {visited} "
                     f"| {'-' if mem is None else f'{mem:.0f}'} |")
    return "\n".join(lines)


def plot(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = sorted({s["frames"] for s in summary})
    fig, axes = plt.subplots(2, len(lengths), figsize=(4.5 * len(lengths), 7), squeeze=False)
    for col, frames in enumerate(lengths):
        for name in selectors_run():
            pts = sorted((1 / s["fraction"], s["accuracy"], s["seconds_per_question"]) for s in summary
                         if s["frames"] == frames and s["selector"] == name)
            if not pts:
                continue
            if name == "full":
                axes[0][col].axhline(pts[0][1], ls="--", color="grey", label="full")
                axes[1][col].axhline(pts[0][2], ls="--", color="grey", label="full")
                continue
            x = [p[0] for p in pts]
            axes[0][col].plot(x, [p[1] for p in pts], marker="o", label=name)
            axes[1][col].plot(x, [p[2] for p in pts], marker="o", label=name)
        axes[0][col].set(title=f"{frames} frames", xscale="log", xlabel="budget (fraction of visual tokens)",
                         ylabel="accuracy", ylim=(0, 1.05))
        axes[1][col].set(xscale="log", xlabel="budget (fraction of visual tokens)", ylabel="seconds / question")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model directory (default: the bundled needle toy model)")
    parser.add_argument("--questions", type=int, default=210)
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096], help="frames per video")
    parser.add_argument("--fractions", type=int, nargs="+", default=[32, 16, 8], help="budget = tokens / F")
    parser.add_argument("--selectors", nargs="+", default=["all"],
                        help="registered selector names and/or `oracle`; `all` (default): every one of them")
    parser.add_argument("--memory-worker", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/needle")
    parser.add_argument("--videos", default="runs/needle_videos", help="cache folder of the generated videos")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-length peak-memory runs")
    args = parser.parse_args()
    if args.memory_worker:
        selector, video, frames, budget, model_path = args.memory_worker
        print(json.dumps(memory_worker(selector, video, int(frames), int(budget), model_path)))
        return
    selectors = selectors_run() if args.selectors == ["all"] else tuple(args.selectors)
    unknown = [n for n in selectors if n not in selectors_run()]
    if unknown:
        parser.error(f"unknown selectors {unknown}; choose from {list(selectors_run())}")

    torch.set_num_threads(2)
    model, processor = load_model(args.model)
    questions = question_set(args.questions, tuple(args.lengths), seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    started = time.perf_counter()
    for i, q in enumerate(questions, 1):
        video = write_video_file(q, Path(args.videos) / f"needle_s{q.seed}_f{q.num_frames}.mp4")
        rows += run_question(model, processor, q, video, args.fractions, selectors)
        if i % 10 == 0 or i == len(questions):
            print(f"{i}/{len(questions)} questions, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    summary = summarise(rows)
    memory = {}
    if not args.no_memory:
        for frames in args.lengths:  # every selector at budget 1/16 (full: all tokens) on one video per length
            q = next(q for q in questions if q.num_frames == frames)
            video = Path(args.videos) / f"needle_s{q.seed}_f{q.num_frames}.mp4"
            for name in selectors:
                if name != "oracle":
                    budget = 10**9 if name == "full" else max(1, frames // 2 * 4 // 16)
                    memory[f"{name}@{frames}"] = peak_memory(name, video, frames, budget, args.model)
    table = markdown(summary, memory)
    print(table)
    (out / "results.json").write_text(json.dumps(rows, indent=0))
    (out / "summary.json").write_text(json.dumps({"summary": summary, "peak_memory_mib": memory,
                                                  "questions": args.questions, "lengths": args.lengths,
                                                  "seconds": time.perf_counter() - started}, indent=1))
    (out / "table.md").write_text(table + "\n")
    plot(summary, out / "needle.png")
    print(f"\nwritten: {out}/results.json, summary.json, table.md, needle.png", file=sys.stderr)


if __name__ == "__main__":
    main()
