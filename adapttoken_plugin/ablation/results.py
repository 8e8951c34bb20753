"""Results of a sweep: the run log (JSONL, appended run by run), CSV/JSON, a markdown table, plots.

    <out>/results.jsonl   one line per finished run (the resumable log)
    <out>/results.csv     every run of the grid, RESULT_FIELDS columns
    <out>/results.json    the same rows and the sweep report (runs, cache hits/misses, hit rate)
    <out>/table.md        accuracy, seconds and groups visited per subset x selector x setting, then Lite vs AdaptToken
    <out>/accuracy.png    accuracy vs budget per selector setting, one panel per subset
    <out>/lite_time.png   seconds per question of AdaptToken and Lite per budget, time saved on each bar
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .stats import bootstrap_interval, mcnemar_exact, paired_bootstrap_interval

RESULT_FIELDS = (
    "run_id", "item_id", "subset", "selector", "budget", "budget_tokens", "tau", "theta", "scoring_layer",
    "frames_per_group", "settings", "total_tokens", "kept", "groups", "groups_visited", "letter", "answer",
    "correct",
    "seconds", "setup_seconds", "feature_pass_seconds", "group_pass_seconds", "final_seconds", "evidence",
    "kept_sha256",
)
SETTING = ("selector", "budget", "tau", "theta", "scoring_layer", "frames_per_group", "settings")


class ResultsLog:
    """Append-only JSONL of finished runs, flushed to disk after each one."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, dict[str, Any]]:
        """Finished runs by run id. A line that is not a finished run (cut by an interruption, `null`, edited by
        hand) is dropped, its run done again, and the file repaired."""
        if not self.path.exists():
            return {}
        rows, lines = {}, []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(row, dict) or not isinstance(row.get("run_id"), str):
                continue
            rows[row["run_id"]] = row
            lines.append(line)
        text = "".join(line + "\n" for line in lines)
        if text != self.path.read_text():
            _write_atomic(self.path, text)
        return rows

    def append(self, row: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One cell per subset x setting, in first-seen order (subsets, then the grid's order)."""
    cells: dict[tuple, list[dict[str, Any]]] = {}
    subsets: dict[str, int] = {}
    settings: dict[tuple, int] = {}
    for r in rows:
        setting = tuple(r.get(k, "" if k == "settings" else None) for k in SETTING)
        subsets.setdefault(r["subset"], len(subsets))
        settings.setdefault(setting, len(settings))
        cells.setdefault((r["subset"], setting), []).append(r)
    out = []
    for (subset, setting), rs in sorted(cells.items(), key=lambda kv: (subsets[kv[0][0]], settings[kv[0][1]])):
        n = len(rs)
        out.append({
            "subset": subset, **dict(zip(SETTING, setting)), "questions": n,
            "accuracy": sum(bool(r["correct"]) for r in rs) / n,
            "accuracy_95": list(bootstrap_interval([float(bool(r["correct"])) for r in rs])),
            "budget_tokens": sum(r["budget_tokens"] for r in rs) / n, "kept": sum(r["kept"] for r in rs) / n,
            "seconds": sum(r["seconds"] for r in rs) / n, "groups_visited": sum(r["groups_visited"] for r in rs) / n,
            "groups": sum(r["groups"] for r in rs) / n,
        })
    return out


def _value(v: Any) -> str:
    return "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def markdown(cells: list[dict[str, Any]]) -> str:
    """The main table, then (when the sweep has both) Lite against AdaptToken at the same settings."""
    lines = ["| subset | selector | budget | tokens kept | tau | theta | layer | frames / group | other settings "
             "| questions | accuracy [95% bootstrap] | s / question | groups visited |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        budget = "all" if c["budget"] == "all" else f"{c['budget']} ({c['budget_tokens']:.0f})"
        visited = f"{c['groups_visited']:.1f} / {c['groups']:.0f}" if c["groups_visited"] else "-"
        low, high = c["accuracy_95"]
        lines.append(f"| {c['subset']} | {c['selector']} | {budget} | {c['kept']:.1f} | {_value(c['tau'])} "
                     f"| {_value(c['theta'])} | {_value(c['scoring_layer'])} | {_value(c['frames_per_group'])} "
                     f"| {c.get('settings') or '-'} | {c['questions']} | {c['accuracy']:.3f} [{low:.3f}, {high:.3f}] "
                     f"| {c['seconds']:.3f} "
                     f"| {visited} |")
    pairs = lite_pairs(cells)
    if pairs:
        lines += ["", "| subset | budget | tau | layer | frames / group | theta | AdaptToken s | Lite s | time saved "
                  "| AdaptToken accuracy | Lite accuracy | Lite groups visited |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for full, lite in pairs:
            lines.append(f"| {lite['subset']} | {lite['budget']} | {_value(lite['tau'])} | "
                         f"{_value(lite['scoring_layer'])} | {_value(lite['frames_per_group'])} | "
                         f"{_value(lite['theta'])} | {full['seconds']:.3f} | {lite['seconds']:.3f} | "
                         f"{1 - lite['seconds'] / full['seconds']:.0%} | {full['accuracy']:.3f} | "
                         f"{lite['accuracy']:.3f} | {lite['groups_visited']:.1f} / {lite['groups']:.0f} |")
    return "\n".join(lines) + "\n"


def paired_comparisons(rows: list[dict[str, Any]], reference: str = "adapttoken") -> list[dict[str, Any]]:
    """`reference` against every other setting at the same subset and budget, on the questions both answered:
    accuracies, how many only one of them got right, the exact McNemar p-value and a 95% paired bootstrap
    interval of the accuracy difference (reference minus other)."""
    outcomes: dict[tuple, dict[str, bool]] = {}
    for r in rows:
        cell = (r["subset"], *(r.get(k, "" if k == "settings" else None) for k in SETTING))
        outcomes.setdefault(cell, {})[r["item_id"]] = bool(r["correct"])
    budget_at = 1 + SETTING.index("budget")
    out = []
    for ref_cell, ref in outcomes.items():
        if ref_cell[1] != reference:
            continue
        for cell, other in outcomes.items():
            if cell[1] == reference or cell[0] != ref_cell[0] or cell[budget_at] != ref_cell[budget_at]:
                continue
            items = sorted(ref.keys() & other.keys())
            if not items:
                continue
            a = [float(ref[i]) for i in items]
            b = [float(other[i]) for i in items]
            only_ref = sum(x > y for x, y in zip(a, b))
            only_other = sum(y > x for x, y in zip(a, b))
            low, high = paired_bootstrap_interval(a, b)
            out.append({
                "subset": cell[0], "budget": cell[budget_at], "reference": dict(zip(SETTING, ref_cell[1:])),
                "other": dict(zip(SETTING, cell[1:])), "questions": len(items),
                "reference_accuracy": sum(a) / len(a), "other_accuracy": sum(b) / len(b),
                "only_reference": only_ref, "only_other": only_other,
                "mcnemar_p": mcnemar_exact(only_ref, only_other), "difference_95": [low, high],
            })
    return out


def paired_markdown(pairs: list[dict[str, Any]]) -> list[str]:
    """The paired table: which differences from AdaptToken the questions can tell apart (p < 0.05)."""
    if not pairs:
        return []
    lines = ["", "| subset | budget | AdaptToken (tau) | other | questions | AdaptToken acc | other acc "
             "| only AdaptToken right | only other right | difference [95% paired bootstrap] | McNemar p "
             "| significant |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in pairs:
        other = p["other"]
        name = other["selector"] + "".join(f", {k} {_value(other[k])}" for k in ("tau", "theta")
                                           if other[k] is not None)
        if other.get("settings"):
            name += f", {other['settings']}"
        low, high = p["difference_95"]
        lines.append(f"| {p['subset']} | {p['budget']} | {_value(p['reference']['tau'])} | {name} | {p['questions']} "
                     f"| {p['reference_accuracy']:.3f} | {p['other_accuracy']:.3f} | {p['only_reference']} "
                     f"| {p['only_other']} | {p['reference_accuracy'] - p['other_accuracy']:+.3f} [{low:+.3f}, "
                     f"{high:+.3f}] | {p['mcnemar_p']:.3g} | {'yes' if p['mcnemar_p'] < 0.05 else 'no'} |")
    return lines


def lite_pairs(cells: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(AdaptToken cell, Lite cell) at the same subset, budget, tau, scoring layer and frames per group."""
    same = ("subset", "budget", "tau", "scoring_layer", "frames_per_group")
    full = {tuple(c[k] for k in same): c for c in cells if c["selector"] == "adapttoken"}
    return [(full[tuple(c[k] for k in same)], c) for c in cells
            if c["selector"] == "adapttoken-lite" and tuple(c[k] for k in same) in full]


def write_outputs(out: Path, rows: list[dict[str, Any]], report: dict[str, Any]) -> None:
    """results.csv, results.json, table.md and the two plots (see the module docstring)."""
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RESULT_FIELDS)
        writer.writeheader()
        writer.writerows({k: r.get(k) for k in RESULT_FIELDS} for r in rows)
    cells = summarise(rows)
    pairs = paired_comparisons(rows)
    (out / "results.json").write_text(json.dumps({"report": report, "summary": cells, "paired": pairs,
                                                  "runs": rows}, indent=1))
    (out / "table.md").write_text(markdown(cells) + "\n".join(paired_markdown(pairs)) + ("\n" if pairs else ""))
    plot_accuracy(cells, out / "accuracy.png")
    plot_lite_time(cells, out / "lite_time.png")


def _label(c: dict[str, Any], varying: list[str]) -> str:
    extra = [f"{k}={_value(c[k])}" for k in varying if c[k] is not None and k != "settings"]
    if c.get("settings") and "settings" in varying:
        extra.append(c["settings"])
    return c["selector"] + (f" ({', '.join(extra)})" if extra else "")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy(cells: list[dict[str, Any]], path: Path) -> None:
    """Accuracy vs budget (mean tokens, log scale), one line per selector setting; `full` as a dashed line."""
    plt = _pyplot()
    subsets = list(dict.fromkeys(c["subset"] for c in cells))
    varying = [k for k in SETTING[2:] if len({c[k] for c in cells if c[k] is not None}) > 1]
    fig, axes = plt.subplots(1, len(subsets), figsize=(5 * len(subsets), 4), squeeze=False)
    for ax, subset in zip(axes[0], subsets):
        lines: dict[str, list[tuple[float, float]]] = {}
        for c in cells:
            if c["subset"] != subset:
                continue
            if c["budget"] == "all":
                ax.axhline(c["accuracy"], ls="--", color="grey", label=c["selector"])
                continue
            lines.setdefault(_label(c, varying), []).append((c["budget_tokens"], c["accuracy"]))
        for label, pts in lines.items():
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set(title=subset, xscale="log", xlabel="budget (visual tokens, mean per question)", ylabel="accuracy",
               ylim=(0, 1.05))
        budgets = sorted({p[0] for pts in lines.values() for p in pts})
        ax.set_xticks(budgets, [f"{b:.0f}" for b in budgets])
        ax.minorticks_off()
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_lite_time(cells: list[dict[str, Any]], path: Path) -> None:
    """Seconds per question, AdaptToken beside each Lite setting, per budget; Lite bars show the time saved."""
    plt = _pyplot()
    pairs = lite_pairs(cells)
    subsets = list(dict.fromkeys(lite["subset"] for _, lite in pairs)) or ["(no Lite runs)"]
    fig, axes = plt.subplots(1, len(subsets), figsize=(5 * len(subsets), 4), squeeze=False)
    for ax, subset in zip(axes[0], subsets):
        ps = [(f, lite) for f, lite in pairs if lite["subset"] == subset]
        for i, (full, lite) in enumerate(ps):
            ax.bar(i - 0.2, full["seconds"], 0.4, color="tab:blue", label="adapttoken" if i == 0 else None)
            ax.bar(i + 0.2, lite["seconds"], 0.4, color="tab:orange", label="adapttoken-lite" if i == 0 else None)
            ax.text(i + 0.2, lite["seconds"], f"-{1 - lite['seconds'] / full['seconds']:.0%}", ha="center",
                    va="bottom", fontsize=8)
        ax.set_xticks(range(len(ps)), [f"{lite['budget']}\ntau={_value(lite['tau'])}\ntheta={_value(lite['theta'])}"
                                       for _, lite in ps], fontsize=7)
        ax.set(title=subset, ylabel="seconds / question")
        if ps:
            ax.set_ylim(0, 1.3 * max(full["seconds"] for full, _ in ps))  # room for the legend above the bars
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
