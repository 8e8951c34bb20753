"""Task benchmark (issue 13): every strategy on every benchmark task, with the entropy mechanism laid open.

Per task (`adapttoken_plugin.bench_tasks`: needle, order, count, detail, distractor, salient-order) x strategy (every
registered selector, the oracle, AdaptToken at other tau and without de-duplication, Lite at other theta) x
budget x video length: accuracy with a 95% bootstrap interval, tokens kept, evidence kept (any of it; the
shortest evidence event, such as salient-order's brief one), seconds per question by stage
(setup / features / group passes / final, composed as in `scripts/bench_needle.py`: evidence is made
once per question and every strategy and budget replays it) and groups visited. Then paired
comparisons of AdaptToken with every other strategy on the same questions (exact McNemar p, 95%
paired bootstrap interval of the accuracy difference), and the entropy mechanism: the group-entropy
distribution of groups with and without evidence and of questions AdaptToken got right and wrong,
the share of the budget AdaptToken gave the groups holding evidence (and those holding the shortest
evidence event) against their share under equal allocation, accuracy against tau (and AdaptToken at every
tau paired with equal allocation under the same ranking, `attention-topk`: what the entropy-weighted budget
itself adds; and AdaptToken against itself with `dedup=False`: what de-duplication adds), and Lite's
accuracy and time against theta.

    python scripts/bench_tasks.py                                        # the bundled tasks toy model
    python scripts/bench_tasks.py --model adapttoken_plugin/assets/needle-toy --per-task 4 --lengths 256
    python scripts/bench_tasks.py --from-results runs/tasks --out runs/tasks   # tables and plot again, no run

Writes <out>/results.json (every run and every group's entropy), <out>/summary.json, <out>/table.md and
<out>/tasks.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from adapttoken_plugin import AdaptTokenConfig
from adapttoken_plugin.ablation.stats import bootstrap_interval, mcnemar_exact, paired_bootstrap_interval
from adapttoken_plugin.bench_tasks import TASKS, TaskQuestion, task_question_set, write_video_file
from adapttoken_plugin.toy import TASKS_MODEL_DIR

sys.path.insert(0, str(Path(__file__).parent))
from bench_needle import STAGE_SECONDS, load_model, open_question, selectors_run  # noqa: E402

TAUS = (0.25, 0.5, 1.0, 4.0)  # beside the default 2.0, at the sweep budget
THETAS = (0.05, 0.5, 1.0)  # beside the default 0.2
ALPHA = 0.05  # significance level of the paired comparisons
NO_DEDUP = "adapttoken dedup=off"  # AdaptToken's allocation without its de-duplication, at the sweep budget


def strategy_configs(selectors: tuple[str, ...], base: AdaptTokenConfig, sweep: bool) -> dict[str, AdaptTokenConfig]:
    """Name -> config of every strategy run: the selectors at their defaults, then the tau and theta sweeps."""
    out = {name: base.replace(selector="full" if name == "oracle" else name) for name in selectors}
    if sweep and "adapttoken" in selectors:
        out |= {f"adapttoken tau={t:g}": base.replace(selector="adapttoken", tau=t) for t in TAUS}
        out[NO_DEDUP] = base.replace(selector="adapttoken", dedup=False)
    if sweep and "adapttoken-lite" in selectors:
        out |= {f"adapttoken-lite theta={t:g}": base.replace(selector="adapttoken-lite", theta=t) for t in THETAS}
    return out


def run_question(model, processor, q: TaskQuestion, video: Path, fractions: list[int], selectors: tuple[str, ...],
                 frames_per_group: int, sweep_fraction: int) -> tuple[list[dict], list[dict]]:
    """(one row per strategy and budget, one row per group with its entropy and whether it holds evidence)."""
    rows: list[dict] = []
    with open_question(model, processor, video, q.num_frames, q.question, q.options, fractions, selectors,
                       frames_per_group) as oq:
        layout, total = oq.layout, oq.layout.num_tokens
        ev_units = oq.units_of_frames(q.evidence_frames)
        ev_units_t = torch.tensor(ev_units, dtype=torch.long)
        ev_tokens = layout.token_ids_of_units(ev_units_t)
        # the shortest evidence event (salient-order's brief one; the needle): where groups differ most
        shortest = min(q.evidence_events, key=lambda e: len(e.frames))
        short_units_t = torch.tensor(oq.units_of_frames(shortest.frames), dtype=torch.long)
        short_tokens = layout.token_ids_of_units(short_units_t)
        groups = [{"task": q.task, "seed": q.seed, "frames": q.num_frames, "group": g.group_id,
                   "entropy": g.entropy, "evidence": bool(torch.isin(g.units, ev_units_t).any()),
                   "shortest_event": bool(torch.isin(g.units, short_units_t).any())}
                  for g in oq.evidence["group"].groups]
        ev_groups = {g["group"] for g in groups if g["evidence"]}
        short_groups = {g["group"] for g in groups if g["shortest_event"]}
        for name, cfg0 in strategy_configs(selectors, oq.base, sweep=True).items():
            swept = " " in name
            plain = name.split(" ")[0]
            pairs = [(1, total)] if plain == "full" else (
                [(sweep_fraction, oq.budgets[sweep_fraction])] if swept else list(oq.budgets.items()))
            for fraction, budget in pairs:
                selector, result, answer, kind, visited, sec = oq.answer(cfg0.replace(budget=budget), ev_units
                                                                         if plain == "oracle" else None)
                feature_pass, passes, own = sec["feature_pass"], sec["group_passes"], sec["final"]
                setup = oq.session.setup_seconds
                kept_ev = torch.isin(result.token_ids, ev_tokens)
                units_hit = set(layout.unit_of(result.token_ids[kept_ev]).tolist())
                rows.append({
                    "task": q.task, "seed": q.seed, "frames": q.num_frames, "strategy": name, "fraction": fraction,
                    "budget": budget, "kept": result.trace.kept_tokens, "total_tokens": total,
                    "correct": answer.letter == q.answer_letter, "letter": answer.letter, "answer": q.answer_letter,
                    "groups": len(kind.groups), "groups_visited": len(visited) if selector.needs_group_pass else 0,
                    "evidence_tokens_kept": int(kept_ev.sum()), "evidence_tokens": int(ev_tokens.numel()),
                    "evidence_units_hit": len(units_hit) / max(1, len(ev_units)),
                    "shortest_event_kept": bool(torch.isin(result.token_ids, short_tokens).any()),
                    # budget the selector gave the groups holding evidence (any / the shortest event's), and what
                    # equal allocation gives them
                    "evidence_group_budget_share": budget_share(result.trace.groups, ev_groups),
                    "evidence_group_equal_share": len(ev_groups) / len(groups),
                    "shortest_event_budget_share": budget_share(result.trace.groups, short_groups),
                    "shortest_event_equal_share": len(short_groups) / len(groups),
                    "seconds": setup + feature_pass + passes + own, "setup_seconds": setup,
                    "feature_pass_seconds": feature_pass, "group_pass_seconds": passes, "final_seconds": own,
                })
    ada = next((r for r in rows if r["strategy"] == "adapttoken" and r["fraction"] == sweep_fraction), None)
    for g in groups:
        g["adapttoken_correct"] = None if ada is None else ada["correct"]
    return rows, groups


def budget_share(traced_groups, chosen: set[int]) -> float | None:
    """Share of the per-group budgets a selector gave the groups `chosen`; None when it gave none."""
    given = [(g.group_id, g.budget) for g in traced_groups if g.budget is not None]
    total = sum(b for _, b in given)
    return sum(b for i, b in given if i in chosen) / total if total else None


def mean_or_none(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarise(rows: list[dict]) -> list[dict]:
    cells = defaultdict(list)
    for r in rows:
        cells[(r["task"], r["frames"], r["strategy"], r["fraction"])].append(r)
    out = []
    for (task, frames, strategy, fraction), rs in cells.items():
        out.append({
            "task": task, "frames": frames, "strategy": strategy, "fraction": fraction, "budget": rs[0]["budget"],
            "questions": len(rs), "accuracy": float(np.mean([r["correct"] for r in rs])),
            "accuracy_95": list(bootstrap_interval([float(r["correct"]) for r in rs])),
            "kept": float(np.mean([r["kept"] for r in rs])),
            "evidence_found": float(np.mean([r["evidence_tokens_kept"] > 0 for r in rs])),
            "evidence_units_hit": float(np.mean([r["evidence_units_hit"] for r in rs])),
            "shortest_event_kept": mean_or_none([r.get("shortest_event_kept") for r in rs]),
            "seconds_per_question": float(np.mean([r["seconds"] for r in rs])),
            **{k: float(np.mean([r[k] for r in rs])) for k in STAGE_SECONDS},
            "groups_visited": float(np.mean([r["groups_visited"] for r in rs])), "groups": rs[0]["groups"],
            **{k: mean_or_none([r.get(k) for r in rs]) for k in (
                "evidence_group_budget_share", "evidence_group_equal_share", "shortest_event_budget_share",
                "shortest_event_equal_share")},
        })
    order = list(TASKS)
    names = [*selectors_run(), *sorted({s["strategy"] for s in out} - set(selectors_run()))]
    return sorted(out, key=lambda s: (order.index(s["task"]), s["frames"], names.index(s["strategy"]), -s["fraction"]))


def paired(rows: list[dict], reference: str = "adapttoken", others=lambda name: " " not in name) -> list[dict]:
    """`reference` against every other strategy `others` accepts (default: every strategy at its defaults) on
    the same questions, per task, length and budget."""
    by = defaultdict(dict)
    for r in rows:
        by[(r["task"], r["frames"], r["fraction"], r["strategy"])][r["seed"]] = float(r["correct"])
    out = []
    for (task, frames, fraction, strategy), other in sorted(by.items()):
        ref = by.get((task, frames, fraction, reference))
        if strategy == reference or not ref or not others(strategy):
            continue
        seeds = sorted(set(ref) & set(other))
        a, b = [ref[s] for s in seeds], [other[s] for s in seeds]
        only_a = sum(x > y for x, y in zip(a, b))
        only_b = sum(y > x for x, y in zip(a, b))
        p = mcnemar_exact(only_a, only_b)
        low, high = paired_bootstrap_interval(a, b)
        out.append({"task": task, "frames": frames, "fraction": fraction, "reference": reference, "other": strategy,
                    "questions": len(seeds), "difference": float(np.mean(a) - np.mean(b)),
                    "difference_95": [low, high], "only_adapttoken": only_a,
                    "only_other": only_b, "mcnemar_p": p, "significant": p < ALPHA and (low > 0 or high < 0)})
    return out


def tau_against_equal(rows: list[dict]) -> list[dict]:
    """AdaptToken at every tau (the default 2 and the sweep) against equal allocation with the same per-group
    ranking (`attention-topk`), on the same questions: what the entropy-weighted budget itself adds."""
    taus = sorted({r["strategy"] for r in rows if r["strategy"] == "adapttoken" or r["strategy"].startswith(
        "adapttoken tau=")})
    equal = [r for r in rows if r["strategy"] == "attention-topk"]
    out = []
    for name in taus:
        fractions = {r["fraction"] for r in rows if r["strategy"] == name and name != "adapttoken"}
        mine = [r for r in rows if r["strategy"] == name and (not fractions or r["fraction"] in fractions)]
        out += paired(mine + [r for r in equal if not fractions or r["fraction"] in fractions], reference=name,
                      others=lambda other: other == "attention-topk")
    return out


def parts_of_adapttoken(rows: list[dict]) -> list[dict]:
    """What each part of AdaptToken adds at the sweep budget, on the same questions: de-duplication (AdaptToken
    against itself with `dedup=False`) and the entropy-weighted budget alone (that against equal allocation,
    `attention-topk`, which does not de-duplicate)."""
    fractions = {r["fraction"] for r in rows if r["strategy"] == NO_DEDUP}
    at = [r for r in rows if r["fraction"] in fractions]
    return (paired(at, others=lambda other: other == NO_DEDUP)
            + paired(at, reference=NO_DEDUP, others=lambda other: other == "attention-topk"))


def entropy_summary(groups: list[dict]) -> dict:
    """Quartiles of group entropy (nats) per task: groups with / without evidence; questions right / wrong."""
    def quart(v: list[float]) -> dict:
        return {"n": len(v), **({} if not v else dict(zip(("q25", "median", "q75"),
                                                        (float(x) for x in np.quantile(v, [0.25, 0.5, 0.75])))))}

    out = {}
    for task in TASKS:
        gs = [g for g in groups if g["task"] == task and g["entropy"] is not None]
        if gs:
            out[task] = {"with_evidence": quart([g["entropy"] for g in gs if g["evidence"]]),
                         "without_evidence": quart([g["entropy"] for g in gs if not g["evidence"]]),
                         "with_shortest_event": quart([g["entropy"] for g in gs if g.get("shortest_event")]),
                         "evidence_groups_of_right_answers": quart([g["entropy"] for g in gs if g["evidence"]
                                                                    and g["adapttoken_correct"]]),
                         "evidence_groups_of_wrong_answers": quart([g["entropy"] for g in gs if g["evidence"]
                                                                    and g["adapttoken_correct"] is False])}
    return out


def markdown(summary: list[dict], comparisons: list[dict], entropy: dict, tau_rows: list[dict],
             parts: list[dict]) -> str:
    lines = ["| task | frames | strategy | budget | tokens kept | accuracy [95% bootstrap] | evidence kept "
             "| evidence pairs hit | shortest event kept | s / question | setup / features / group passes / final s "
             "| groups visited "
             "| budget to evidence groups (equal) | to the shortest event's groups (equal) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        budget = "all" if s["strategy"] == "full" else f"1/{s['fraction']} ({s['budget']})"
        visited = f"{s['groups_visited']:.1f} / {s['groups']}" if s["groups_visited"] else "-"
        share, short = (("-" if s[f"{k}_budget_share"] is None else
                         f"{s[f'{k}_budget_share']:.2f} ({s[f'{k}_equal_share']:.2f})")
                        for k in ("evidence_group", "shortest_event"))
        kept_short = "-" if s["shortest_event_kept"] is None else f"{s['shortest_event_kept']:.2f}"
        low, high = s["accuracy_95"]
        lines.append(f"| {s['task']} | {s['frames']} | {s['strategy']} | {budget} | {s['kept']:.0f} "
                     f"| {s['accuracy']:.2f} [{low:.2f}, {high:.2f}] | {s['evidence_found']:.2f} "
                     f"| {s['evidence_units_hit']:.2f} | {kept_short} | {s['seconds_per_question']:.2f} "
                     f"| {' / '.join(f'{s[k]:.2f}' for k in STAGE_SECONDS)} | {visited} | {share} | {short} |")
    lines += ["", "Paired: AdaptToken minus the other strategy on the same questions.", "",
              "| task | frames | budget | other | questions | difference [95% paired bootstrap] | only AT / only other "
              "| McNemar p | significant |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [comparison_line(c, c["other"]) for c in comparisons]
    lines += ["", "AdaptToken at each tau against equal allocation with the same ranking (attention-topk), on the same "
              "questions.", "", "| task | frames | budget | AdaptToken | questions | difference [95% paired bootstrap] "
              "| only AT / only equal | McNemar p | significant |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [comparison_line(c, c["reference"]) for c in tau_rows]
    lines += ["", "What each part of AdaptToken adds, on the same questions: de-duplication (AdaptToken against "
              f"`{NO_DEDUP}`) and the entropy-weighted budget alone (`{NO_DEDUP}` against equal allocation, "
              "attention-topk).", "", "| task | frames | budget | compared | questions | difference [95% paired "
              "bootstrap] | only first / only second | McNemar p | significant |",
              "|---|---|---|---|---|---|---|---|---|"]
    lines += [comparison_line(c, f"{c['reference']} - {c['other']}") for c in parts]
    lines += ["", "Group entropy (nats): median [q25, q75] (groups).", "",
              "| task | groups with evidence | without | with the shortest evidence event "
              "| evidence groups, AdaptToken right | ..., wrong |", "|---|---|---|---|---|---|"]

    def cell(d: dict) -> str:
        return "-" if not d["n"] else f"{d['median']:.2f} [{d['q25']:.2f}, {d['q75']:.2f}] ({d['n']})"

    for task, e in entropy.items():
        lines.append(f"| {task} | {cell(e['with_evidence'])} | {cell(e['without_evidence'])} "
                     f"| {cell(e.get('with_shortest_event', {'n': 0}))} "
                     f"| {cell(e['evidence_groups_of_right_answers'])} "
                     f"| {cell(e['evidence_groups_of_wrong_answers'])} |")
    return "\n".join(lines)


def comparison_line(c: dict, name: str) -> str:
    """One table row of a paired comparison `c` (from `paired`), naming the strategy compared as `name`."""
    low, high = c["difference_95"]
    return (f"| {c['task']} | {c['frames']} | 1/{c['fraction']} | {name} | {c['questions']} "
            f"| {c['difference']:+.2f} [{low:+.2f}, {high:+.2f}] | {c['only_adapttoken']} / "
            f"{c['only_other']} | {c['mcnemar_p']:.3f} | {'yes' if c['significant'] else 'no'} |")


def plot(summary: list[dict], groups: list[dict], path: Path, sweep_fraction: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if any(s["task"] == t for s in summary)]
    longest = max(s["frames"] for s in summary)  # one video length per curve: lengths differ in accuracy
    summary = [s for s in summary if s["frames"] == longest]
    colours = plt.get_cmap("tab20").colors  # one colour per strategy (the default cycle has 10)
    fig, axes = plt.subplots(3, len(tasks), figsize=(4 * len(tasks), 10), squeeze=False)
    for col, task in enumerate(tasks):
        for i, name in enumerate(selectors_run()):
            pts = sorted((1 / s["fraction"], s["accuracy"]) for s in summary
                         if s["task"] == task and s["strategy"] == name and s["strategy"] != "full")
            if pts:
                axes[0][col].plot(*zip(*pts), marker="o", label=name, color=colours[i % len(colours)])
        axes[0][col].set(title=f"{task}, {longest} frames", xscale="log",
                         xlabel="budget (fraction of visual tokens)", ylabel="accuracy", ylim=(0, 1.05))
        fractions = sorted({s["fraction"] for s in summary if s["strategy"] != "full"})
        axes[0][col].set_xticks([1 / f for f in fractions], [f"1/{f}" for f in fractions])
        axes[0][col].minorticks_off()
        kinds = {"with the shortest evidence event": [], "with other evidence only": [], "with evidence": [],
                 "without evidence": []}  # "with evidence": results of runs that did not tell the shortest event
        for g in groups:
            if g["task"] == task and g["entropy"] is not None:
                kind = ("without evidence" if not g["evidence"] else "with evidence" if "shortest_event" not in g
                        else "with the shortest evidence event" if g["shortest_event"] else "with other evidence only")
                kinds[kind].append(g["entropy"])
        bins = np.linspace(0, 1.6, 33)
        for label, values in kinds.items():
            if values:  # a density of no values is undefined
                axes[1][col].hist(values, bins=bins, alpha=0.6, density=True, label=label)
        axes[1][col].axvline(np.log(4), ls="--", color="grey")
        axes[1][col].set(xlabel="group entropy (nats)", ylabel="density")
        at = [s for s in summary if s["task"] == task and s["fraction"] == sweep_fraction]
        for prefix, key in (("adapttoken", "tau"), ("adapttoken-lite", "theta")):
            pts = sorted([(2.0 if key == "tau" else 0.2, s["accuracy"]) for s in at if s["strategy"] == prefix]
                         + [(float(s["strategy"].split("=")[1]), s["accuracy"]) for s in at
                            if s["strategy"].startswith(f"{prefix} {key}=")])
            if pts:
                axes[2][col].plot(*zip(*pts), marker="o", label=f"{prefix} vs {key}")
        equal = [s["accuracy"] for s in at if s["strategy"] == "attention-topk"]
        if equal:
            axes[2][col].axhline(equal[0], ls=":", color="grey", label="attention-topk (equal allocation)")
        axes[2][col].set(xscale="log", xlabel="tau / theta", ylabel=f"accuracy at 1/{sweep_fraction}, {longest} frames",
                         ylim=(0, 1.05))
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7)
    axes[2][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(TASKS_MODEL_DIR), help="model directory (default: the tasks toy model)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--per-task", type=int, default=200, help="questions per task (spread over the lengths)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096], help="frames per video")
    parser.add_argument("--fractions", type=int, nargs="+", default=[64, 32, 16, 8], help="budget = tokens / F")
    parser.add_argument("--sweep-fraction", type=int, default=16, help="the budget of the tau and theta sweeps")
    parser.add_argument("--frames-per-group", type=int, default=32)
    parser.add_argument("--selectors", nargs="+", default=["all"],
                        help="registered selector names and/or `oracle`; `all` (default): every one of them")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", default="runs/tasks")
    parser.add_argument("--videos", default="runs/tasks_videos", help="cache folder of the generated videos")
    parser.add_argument("--from-results", metavar="DIR", help="run nothing: summarise DIR/results.json of an earlier "
                        "run again (its tables, comparisons and plot) into --out")
    args = parser.parse_args()
    selectors = selectors_run() if args.selectors == ["all"] else tuple(args.selectors)
    unknown = [n for n in selectors if n not in selectors_run()]
    if unknown:
        parser.error(f"unknown selectors {unknown}; choose from {list(selectors_run())}")
    if args.sweep_fraction not in args.fractions:
        parser.error(f"--sweep-fraction {args.sweep_fraction} must be one of --fractions {args.fractions}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_results:
        rows, groups, ran = earlier_results(Path(args.from_results))
        args = argparse.Namespace(**(ran["args"] | {"out": args.out, "from_results": args.from_results}))
        seconds = ran["seconds"]  # of the run that made them
    else:
        started = time.perf_counter()
        rows, groups = run_questions(args, selectors)
        seconds = time.perf_counter() - started
    summary = summarise(rows)
    comparisons = paired(rows)
    tau_rows = tau_against_equal(rows)
    parts = parts_of_adapttoken(rows)
    entropy = entropy_summary(groups)
    table = markdown(summary, comparisons, entropy, tau_rows, parts)
    print(table)
    if not args.from_results or Path(args.from_results).resolve() != out.resolve():
        (out / "results.json").write_text(json.dumps({"runs": rows, "groups": groups}, indent=0))
    (out / "summary.json").write_text(json.dumps({
        "summary": summary, "paired": comparisons, "tau_against_equal": tau_rows,
        "parts_of_adapttoken": parts, "entropy": entropy,
        "args": vars(args), "seconds": seconds}, indent=1))
    (out / "table.md").write_text(table + "\n")
    plot(summary, groups, out / "tasks.png", args.sweep_fraction)
    print(f"\nwritten: {out}/results.json, summary.json, table.md, tasks.png", file=sys.stderr)


def run_questions(args: argparse.Namespace, selectors: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
    """Every question of the run: (one row per strategy and budget, one row per group)."""
    torch.set_num_threads(args.threads)
    model, processor = load_model(args.model)
    questions = task_question_set(args.per_task, tuple(args.lengths), tuple(args.tasks), seed=args.seed)
    rows, groups = [], []
    started = time.perf_counter()
    for i, q in enumerate(questions, 1):
        video = write_video_file(q, Path(args.videos) / f"{q.task}_s{q.seed}_f{q.num_frames}.mp4")
        r, g = run_question(model, processor, q, video, args.fractions, selectors, args.frames_per_group,
                            args.sweep_fraction)
        rows += r
        groups += g
        if i % 5 == 0 or i == len(questions):
            print(f"{i}/{len(questions)} questions, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows, groups


def earlier_results(folder: Path) -> tuple[list[dict], list[dict], dict]:
    """(rows, groups, {"args", "seconds"}) of an earlier run's results.json and summary.json in `folder`."""
    results, summary = folder / "results.json", folder / "summary.json"
    for path in (results, summary):
        if not path.is_file():
            sys.exit(f"bench_tasks.py: error: --from-results {folder}: no {path.name} there (an earlier run's --out)")
    data = json.loads(results.read_text())
    ran = json.loads(summary.read_text())
    return data["runs"], data["groups"], {"args": ran["args"], "seconds": ran.get("seconds", 0.0)}


if __name__ == "__main__":
    main()
