"""Command line of the calibration: `adapttoken calibrate ...`.

    adapttoken calibrate --target-skip 0.5 --questions 16 --lengths 256
    adapttoken calibrate --max-loss 0.02 --dataset calib.jsonl --model PATH --device cuda --set budget=7040

Runs AdaptToken's group passes over every group of each calibration question once, replays Lite's stop rule
at every theta where it changes (and, for --max-loss or --with-accuracy, Lite's answer at each stop), prints
the trade-off and the chosen theta, and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json

from ..ablation.command import add_dataset_arguments, add_run_arguments, base_config, dataset_items
from ..checks import check_device, check_output_file, check_output_folder
from ..errors import ConfigError, exit_code
from ..loading import load_model
from .replay import LITE, calibrate_questions, check_items, check_lite_config, replay_questions
from .sweep import Calibration, ThetaRow, check_max_loss, check_target_skip

#: rows of the trade-off printed at most (the JSON file holds them all)
ROWS_SHOWN = 20


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adapttoken calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    rule = parser.add_argument_group("rule (exactly one)").add_mutually_exclusive_group(required=True)
    rule.add_argument("--target-skip", type=float, metavar="S", help="choose the smallest theta at which Lite skips "
                      "at least this share of AdaptToken's group passes (0 < S < 1)")
    rule.add_argument("--max-loss", type=float, metavar="L", help="choose the largest theta whose replayed accuracy "
                      "is at least AdaptToken's (every group) minus L (0 <= L <= 1; 0.02 = two points)")
    parser.add_argument("--with-accuracy", action="store_true", help="with --target-skip: replay the answers too, "
                        "for the accuracy column (one final pass per stop of each question)")
    add_dataset_arguments(parser)
    run = parser.add_argument_group("run (theta is what calibrate chooses; selector is adapttoken-lite)")
    add_run_arguments(run)
    run.add_argument("--out", default="runs/calibrate/calibration.json", help="JSON file for the result, the whole "
                     "table and every question's entropies (its folder is created; default: "
                     "runs/calibrate/calibration.json)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_code("calibrate", lambda: _calibrate(args))


def _calibrate(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    # everything that can be wrong is checked before a video is written or the model loads
    if args.target_skip is not None:
        check_target_skip(args.target_skip)
    else:
        check_max_loss(args.max_loss)
    base, given = base_config(args.set)
    if "theta" in given:
        raise ConfigError("--set theta: theta is what calibrate chooses; leave it out")
    if "selector" in given:
        check_lite_config(base)
    config = base.replace(selector=LITE)
    answers = args.max_loss is not None or args.with_accuracy
    check_device(args.device)
    out = check_output_file(args.out, "--out")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    console = Console(stderr=True)
    if args.dataset == "needle":
        check_output_folder(args.videos, "--videos")
    items = dataset_items(args, given, console)
    check_items(items, config, answers)
    model, processor = load_model(args.model, args.device, args.dtype)
    with Progress(console=console, transient=True, disable=args.quiet) as progress:
        task = progress.add_task("calibration questions", total=len(items))
        questions = replay_questions(model, processor, items, config, answers, args.max_new_tokens, args.backend,
                                     on_question=lambda _: progress.advance(task))
    result = calibrate_questions(questions, config.min_groups, args.target_skip, args.max_loss)
    print(format_table(result))
    print(summary(result))
    out.write_text(json.dumps({
        "calibration": result.to_dict(), "model": args.model or "bundled trained toy model", "dataset": args.dataset,
        "config": config.to_dict(), "questions": [q.to_dict() for q in questions],
    }, indent=1))
    print(f"written: {out}")
    return 0


def shown_rows(result: Calibration, limit: int = ROWS_SHOWN) -> list[int]:
    """Indices of the rows to print: all when there are at most `limit`; else the first and last, the chosen
    one and the next, and the first reaching each tenth of the groups skipped."""
    rows = result.table
    if len(rows) <= limit:
        return list(range(len(rows)))
    chosen = _chosen_index(result)
    keep = {0, len(rows) - 1, chosen, min(chosen + 1, len(rows) - 1)}  # where the chosen row's interval ends
    for tenth in range(1, 10):
        keep.add(next((i for i, row in enumerate(rows) if row.skipped >= tenth / 10), len(rows) - 1))
    return sorted(keep)


def _chosen_index(result: Calibration) -> int:
    return next(i for i, row in enumerate(result.table) if row.theta == result.theta)


def format_table(result: Calibration) -> str:
    """The trade-off as a Markdown table: theta -> groups skipped, visited, group-pass seconds, accuracy."""
    chosen = _chosen_index(result)
    lines = ["| theta (from) | groups skipped | groups visited / question | group-pass s / question | accuracy | |",
             "|---|---|---|---|---|---|"]
    indices = shown_rows(result)
    digits = _digits([result.table[i].theta for i in indices])
    for i in indices:
        mark = "chosen" if i == chosen else ""
        lines.append(_row_line(result.table[i], result.questions, result.groups, digits, mark))
    if len(indices) < len(result.table):
        lines.append(f"\n{len(indices)} of {len(result.table)} rows shown; every row is in the JSON file")
    return "\n".join(lines)


def _digits(thetas: list[float | None]) -> int:
    """Significant digits (at least 6) that print these thetas as distinct numbers."""
    values = [t for t in thetas if t is not None]
    return next((d for d in range(6, 17) if len({f"{t:.{d}g}" for t in values}) == len(values)), 17)


def _row_line(row: ThetaRow, questions: int, groups: int, digits: int, mark: str) -> str:
    theta = "below all (no early stop)" if row.theta is None else f"{row.theta:.{digits}g}"
    skipped = f"{row.skipped:.3f} ({row.skipped_groups}/{groups})"
    seconds = "-" if row.seconds is None else f"{row.seconds:.3f}"
    accuracy = "-" if row.correct is None else f"{row.accuracy:.3f} ({row.correct}/{questions})"
    return f"| {theta} | {skipped} | {row.groups_visited:.2f} | {seconds} | {accuracy} | {mark} |"


def summary(result: Calibration) -> str:
    """What was chosen, by which rule, and the settings to use."""
    if result.rule == "skip":
        rule = f"the smallest theta skipping at least {result.target_skip:g} of the group passes"
    else:
        rule = (f"the largest theta whose accuracy is within {result.max_loss:g} of AdaptToken's "
                f"({result.reference_accuracy:.3f})")
    lines = [f"rule: {rule}; {result.questions} questions, {result.groups} groups, min_groups={result.min_groups}"]
    if result.theta is None:
        lines.append("no theta that stops early qualifies on these questions: use selector=adapttoken")
        return "\n".join(lines)
    accuracy = "" if result.accuracy is None else f", accuracy {result.accuracy:.3f}"
    if result.reference_accuracy is not None:
        accuracy += f" (AdaptToken over every group: {result.reference_accuracy:.3f})"
    settings = result.settings()
    lines += [
        f"chosen: theta={result.theta!r}: Lite skips {result.skipped:.3f} of the group passes{accuracy}",
        f"use: selector=adapttoken-lite, theta={result.theta!r}, min_groups={result.min_groups}",
        "  Python:    AdaptTokenConfig(" + ", ".join(f"{k}={v!r}" for k, v in settings.items()) + ")",
        "  CLI:       " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in settings.items()),
        "  lmms-eval: " + ",".join(f"adapttoken_{k}={v}" for k, v in settings.items()),
        "(for this model and these group-pass settings: frames per group, entropy mode, scoring layer, frames)",
    ]
    return "\n".join(lines)

