"""Command line: `adapttoken answer`, `adapttoken demo`, `adapttoken list`, `adapttoken ablate`,
`adapttoken calibrate`, `adapttoken lmms-eval`.

Every `AdaptTokenConfig` field is a flag of `answer` and `demo` (`--budget 4096`, `--selector
adapttoken-lite`, ...), parsed by `AdaptTokenConfig.from_dict`, so the CLI cannot drift from the config.

`answer --tp N` and `lmms-eval --tp N` run on N tensor-parallel ranks: started outside a distributed
launcher, the command starts torchrun with N copies of itself (`launch.relaunch`); each copy, a rank,
joins the process group (`launch.init_rank`) and runs the command with its slice of the language model.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .checks import DTYPES, check_device, check_output_file, check_output_folder, positive_float, positive_int, require
from .config import VIDEO_BACKENDS, AdaptTokenConfig, setting_fields
from .errors import exit_code
from .loading import load_model  # also importable as cli.load_model, as before
from .registry import ADAPTERS, SELECTORS

_CONFIG_FIELDS = setting_fields()
#: default seconds a tensor-parallel rank waits for the others (distributed.DEFAULT_TIMEOUT; not imported
#: from there, since that imports torch and `adapttoken --help` should not)
RANK_TIMEOUT = 600.0


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("selection settings (AdaptTokenConfig: docs/config.md; phase and default shown)")
    for f in _CONFIG_FIELDS:
        help_text = f"{f.metadata['help']} [{f.metadata['phase']}; default: {f.default}]".replace("%", "%%")
        choices = f.metadata["choices"]  # shown as {a,b,...} and checked by argparse
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f"cfg_{f.name}", default=None,
                           metavar=None if choices else "V", choices=choices, help=help_text)


def _config_from_args(args: argparse.Namespace) -> AdaptTokenConfig:
    values = {f.name: getattr(args, f"cfg_{f.name}") for f in _CONFIG_FIELDS}
    return AdaptTokenConfig.from_dict({k: v for k, v in values.items() if v is not None})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adapttoken", description="Entropy-guided visual-token selection "
                                     "(AdaptToken) for video LLMs on unmodified transformers models.")
    sub = parser.add_subparsers(dest="command", required=True)

    answer = sub.add_parser("answer", help="answer a question about a video file")
    answer.add_argument("--model", required=True, help="local model directory (or hub id) of a supported class")
    answer.add_argument("--video", required=True, help="video file")
    answer.add_argument("--question", required=True)
    answer.add_argument("--options", nargs="*", default=None, help="answer options (multiple choice: A, B, ...)")
    answer.add_argument("--device", default="cpu", help="torch device of the model: cpu, cuda, cuda:N, mps "
                        "(default: cpu)")
    answer.add_argument("--dtype", default="auto", choices=DTYPES, help="model dtype (default: auto, the "
                        "checkpoint's own)")
    answer.add_argument("--tp", type=positive_int, default=1, help="split the language model over this many ranks "
                        "(DeepSpeed tensor parallelism, one GPU each; the command starts them under torchrun; needs "
                        "the `deepspeed` extra)")
    answer.add_argument("--rank-timeout", type=positive_float, default=RANK_TIMEOUT,
                        help=f"with --tp: seconds a rank waits for the others before failing "
                        f"(default: {RANK_TIMEOUT:g})")
    _add_common(answer)

    demo = sub.add_parser("demo", help="answer a needle question about a generated 1,024-frame video with the "
                          "bundled trained toy model (no download); writes a trace and an HTML report")
    demo.add_argument("--out", default="runs/demo", help="folder for the demo video and trace (default: runs/demo)")
    _add_common(demo)

    listing = sub.add_parser("list", help="registered selectors (with the settings each reads) and supported model "
                             "classes")
    listing.add_argument("--markdown", action="store_true", help="print the selector, family and configuration "
                         "tables as Markdown (the copies in README.md and docs/config.md)")
    sub.add_parser("ablate", help="ablation sweep over a dataset (`adapttoken ablate --help`; same as "
                   "scripts/ablate.py)", add_help=False)
    sub.add_parser("calibrate", help="choose AdaptToken-Lite's theta for a model from calibration questions "
                   "(`adapttoken calibrate --help`)", add_help=False)
    sub.add_parser("lmms-eval", help="lmms-eval with an adapttoken_* model split over N tensor-parallel ranks "
                   "(`adapttoken lmms-eval --tp N LMMS_EVAL_ARGS...`; see `adapttoken lmms-eval --help`)",
                   add_help=False)
    return parser


def build_lmms_eval_parser() -> argparse.ArgumentParser:
    """`adapttoken lmms-eval`'s own options; every other argument is lmms-eval's (read by `parse_known_args`)."""
    parser = argparse.ArgumentParser(
        prog="adapttoken lmms-eval", usage="%(prog)s --tp N [--rank-timeout S] [--] LMMS_EVAL_ARGS...",
        # no abbreviations: lmms-eval's own options must never be taken for a prefix of ours
        allow_abbrev=False,
        description="Run lmms-eval's own command line on N tensor-parallel ranks: every rank answers every "
        "document with its slice of an adapttoken_* model's language model (DeepSpeed inference), and rank 0 "
        "alone writes --output_path and --log_samples. Started outside a launcher, it starts the ranks under "
        "torchrun.",
        epilog="example: adapttoken lmms-eval --tp 2 --model adapttoken_qwen2_5_vl --model_args pretrained=PATH "
        "--tasks videomme --output_path runs/eval")
    parser.add_argument("--tp", type=int, required=True, metavar="N",
                        help="ranks (processes, one GPU each) to split the language model over; at least 2")
    parser.add_argument("--rank-timeout", type=positive_float, default=RANK_TIMEOUT, metavar="S",
                        help=f"seconds a rank waits for the others before failing (default: {RANK_TIMEOUT:g})")
    return parser


def lmms_eval_command(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """`adapttoken lmms-eval ARGV` split into its own options and lmms-eval's arguments (in their order).

    Not `nargs=REMAINDER`: argparse only starts a remainder at a positional, and lmms-eval's arguments
    start with an option (`--model ...`), which it would then refuse as unrecognised.
    """
    parser = build_lmms_eval_parser()
    args, rest = parser.parse_known_args(argv)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if args.tp < 2:
        parser.error(f"--tp {args.tp}: at least 2 ranks (one process needs no launcher: run `lmms-eval ...`)")
    return args, rest


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="auto", choices=VIDEO_BACKENDS,
                        help="video decoder (auto: torchcodec when it loads, else PyAV)")
    parser.add_argument("--max-new-tokens", type=positive_int, default=16, help="tokens of the answer at most "
                        "(default: 16)")
    parser.add_argument("--trace", default=None, help="write the trace as JSON to this file (its folder is created)")
    parser.add_argument("--report", default=None, help="write an HTML report (groups, kept tokens on frames) to this "
                        "file (its folder is created)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_flags(parser)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ablate"]:  # its own parser: grid axes, dataset, output folder
        from .ablation.command import main as ablate

        return ablate(argv[1:])
    if argv[:1] == ["calibrate"]:  # its own parser: the rule, dataset and model
        from .calibration.command import main as calibrate

        return calibrate(argv[1:])
    if argv[:1] == ["lmms-eval"]:  # its own parser: the other arguments are lmms-eval's
        return _lmms_eval(argv)
    args = build_parser().parse_args(argv)
    return exit_code("adapttoken", lambda: _command(args, argv))


def _command(args: argparse.Namespace, argv: list[str]) -> int:
    if args.command == "list":
        return _list(args.markdown)
    config = _config_from_args(args)  # a bad setting is reported once, before any rank starts
    if args.command == "demo":
        return _demo(args, config)
    check_answer_inputs(args)  # before the ranks start and before the model loads
    if args.tp > 1:
        from .launch import end_with_launcher, in_rank, relaunch

        if not in_rank():  # start the ranks; each runs this command again
            return relaunch(args.tp, argv)
        end_with_launcher()
    return _answer(args, config)


def check_answer_inputs(args: argparse.Namespace) -> None:
    """What `adapttoken answer` can check before the model loads: the extras it needs, the device, that the
    video opens with the chosen decoder (a probe: metadata, first frame and last second), and that the trace
    and report can be written (their folders are created)."""
    if args.tp > 1:
        require("deepspeed", f"--tp {args.tp} (tensor parallelism)", "deepspeed")
    else:
        check_device(args.device)
    from .video import FrameReader

    with FrameReader(args.video, backend=args.backend):
        pass
    _check_outputs(args)


def _check_outputs(args: argparse.Namespace) -> None:
    if args.trace:
        check_output_file(args.trace, "--trace")
    if args.report:
        check_output_file(args.report, "--report")


def _lmms_eval(argv: list[str]) -> int:
    args, lmms_eval_args = lmms_eval_command(argv[1:])
    from .launch import end_with_launcher, in_rank, init_rank, relaunch

    def check() -> int:
        require("lmms_eval", "adapttoken lmms-eval", "eval")  # before the ranks start, not once per rank
        require("deepspeed", f"--tp {args.tp} (tensor parallelism)", "deepspeed")
        return 0

    if exit_code("adapttoken lmms-eval", check):
        return 2
    if not in_rank():  # start the ranks; each runs this command again
        return relaunch(args.tp, argv)
    end_with_launcher()
    from datetime import timedelta

    from .integrations.lmms_eval.tensor_parallel import run_lmms_eval

    def run() -> int:
        init_rank(args.tp, timedelta(seconds=args.rank_timeout))
        return run_lmms_eval(lmms_eval_args)

    return exit_code("adapttoken lmms-eval", run)


def _list(markdown: bool = False) -> int:
    """Plain aligned text (greppable, never truncated by the terminal width), or the docs' Markdown tables."""
    if markdown:
        from .doc_tables import markdown as tables

        print(tables(), end="")
        return 0
    names = SELECTORS.names()
    width = max(map(len, names))
    print("selectors:")
    for name in names:
        cls = SELECTORS.get(name)
        reads = ", ".join(cls.settings_read()) or "-"
        print(f"  {name:<{width}}  {SELECTORS.meta(name).get('summary', '')}")
        print(f"  {'':<{width}}  reads: {reads}")
    print("model adapters:")
    for name in ADAPTERS.names():
        meta = ADAPTERS.meta(name)
        print(f"  {name}: {', '.join(meta.get('model_classes', ()))}  ({meta.get('summary', '')})")
    return 0


def _answer(args: argparse.Namespace, config: AdaptTokenConfig) -> int:
    if args.tp == 1:
        model, processor = load_model(args.model, args.device, args.dtype)
        return _run(args, config, model, processor, args.video, args.question, args.options)
    from datetime import timedelta

    from .distributed import is_main_process
    from .integrations.deepspeed import shard_language_model
    from .launch import init_rank

    timeout = timedelta(seconds=args.rank_timeout)
    init_rank(args.tp, timeout)
    model, processor = load_model(args.model, "cpu", args.dtype)  # each rank's own device: shard_language_model
    shard_language_model(model, timeout)
    if not is_main_process(model):  # every rank computes the answer; rank 0 alone reports it
        args.quiet, args.trace, args.report = True, None, None
    return _run(args, config, model, processor, args.video, args.question, args.options,
                show=is_main_process(model))


def _demo(args: argparse.Namespace, config: AdaptTokenConfig) -> int:
    from .demo import DEMO_SETTINGS, demo_model_and_processor, demo_question

    # the demo's own settings, unless given on the command line
    given = {f.name for f in _CONFIG_FIELDS if getattr(args, f"cfg_{f.name}") is not None}
    config = config.replace(**{k: v for k, v in DEMO_SETTINGS.items() if k not in given})
    out = check_output_folder(args.out, "--out")
    args.trace = args.trace or str(out / "trace.json")
    args.report = args.report or str(out / "report.html")
    _check_outputs(args)
    question = demo_question()
    video = _write_demo_video(out / f"needle_s{question.seed}_f{question.num_frames}.mp4", args.quiet)
    model, processor = demo_model_and_processor()
    code = _run(args, config, model, processor, str(video), question.question, question.options)
    print(f"expected answer: {question.answer_letter} ({question.colour}; needle at frames "
          f"{question.needle_frames[0]}..{question.needle_frames[-1]})")
    return code


def _write_demo_video(path: Path, quiet: bool) -> Path:
    """The demo video, written with a progress bar unless a complete one is there already."""
    from rich.console import Console
    from rich.progress import Progress

    from .demo import write_demo_video

    with Progress(console=Console(stderr=True), transient=True, disable=quiet) as progress:
        task = progress.add_task(f"writing the demo video {path.name}", total=None)
        return write_demo_video(path, lambda done, total: progress.update(task, completed=done, total=total))


def _run(args, config, model, processor, video, question, options, show: bool = True) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from .pipeline import Pipeline

    console = Console(quiet=not show)
    pipe = Pipeline(model, processor, config, backend=args.backend)
    with Progress(console=console, transient=True, disable=args.quiet) as progress:
        task = progress.add_task("groups", total=None)

        def on_group(group, num_groups):
            progress.update(task, total=num_groups, advance=1)

        answer = pipe.answer(video, question, options, max_new_tokens=args.max_new_tokens, on_group=on_group)
    console.print(trace_table(answer.trace))
    console.print(f"[bold]answer:[/bold] {answer.letter or '-'}   [dim]reply: {answer.text!r}[/dim]")
    saved = True
    if args.trace:
        saved = _write(console, "trace", args.trace, answer.trace.save)
    if args.report:
        from .report import write_report

        def report(path: str) -> None:
            write_report(path, answer.trace, video, title=f"adapttoken: {question}",
                         answer=f"{answer.letter or '-'} ({answer.text!r})", backend=args.backend)

        wrote_report = _write(console, "report", args.report, report)
        saved = saved and wrote_report
    if not saved:
        _save_elsewhere(answer.trace)
        return 1
    return 0


def _write(console: Any, what: str, path: str, write: Any) -> bool:
    """`write(path)`, reported; a failure (the disk filled up, the folder vanished) is reported, not raised."""
    try:
        write(path)
    except OSError as error:
        print(f"adapttoken: error: could not write the {what} to {path}: {error}", file=sys.stderr)
        return False
    console.print(f"{what} written to {path}")
    return True


def _save_elsewhere(trace: Any) -> None:
    """A computed result is never lost to a failed write: the trace goes to a new file in the temporary folder."""
    import tempfile

    fd, path = tempfile.mkstemp(prefix="adapttoken-trace-", suffix=".json")
    os.close(fd)
    try:
        trace.save(path)
    except OSError as error:
        print(f"adapttoken: error: the trace could not be saved in {path} either: {error}", file=sys.stderr)
        return
    print(f"adapttoken: the trace was saved to {path} instead", file=sys.stderr)


def trace_table(trace: Any) -> Any:
    """A rich table: one row per group (frames, entropy, budget, kept), then the seconds per stage."""
    from rich.table import Table

    table = Table(title=f"{trace.selector}: kept {trace.kept_tokens} of {trace.total_tokens} visual tokens, "
                        f"{trace.groups_visited}/{len(trace.groups)} groups visited")
    for column in ("group", "frames", "first..last frame", "entropy", "budget", "tokens kept"):
        table.add_column(column, justify="right")
    for g in trace.groups:
        table.add_row(
            str(g.group_id), str(len(g.frames)), f"{g.frames[0]}..{g.frames[-1]}",
            "-" if g.entropy is None else f"{g.entropy:.3f}",
            "-" if g.budget is None else str(g.budget), str(g.kept),
        )
    table.caption = (BUDGET_VS_KEPT + "\nseconds: " + ", ".join(f"{k} {v:.3f}" for k, v in trace.seconds.items()))
    return table


#: why a group's "tokens kept" may differ from its "budget" (the per-group table's caption)
BUDGET_VS_KEPT = ("budget: the tokens the allocation gave the group; tokens kept: the group's tokens in the final "
                  "selection. De-duplication works across groups, and a selector may top up from groups it did not "
                  "visit, so the two can differ.")


if __name__ == "__main__":
    sys.exit(main())
