"""Command line of the ablation sweep: `adapttoken ablate ...` or `python scripts/ablate.py ...`.

    python scripts/ablate.py --dataset needle --questions 24 --lengths 256 1024 \\
        --selectors uniform attention-topk adapttoken adapttoken-lite --budgets 1/32 1/16 --tau 0.5 2
    python scripts/ablate.py --dataset videomme.jsonl --model PATH --device cuda --budgets 4096 7040 \\
        --selectors adapttoken adapttoken-lite --theta 0.1 0.2 0.4 --set max_frames=1024

Run it again with the same --out to resume; point --cache at one folder to share evidence between sweeps.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from ..checks import DTYPES, check_device, check_output_folder, positive_int, require
from ..config import VIDEO_BACKENDS, AdaptTokenConfig
from ..errors import ConfigError, exit_code
from ..loading import load_model  # the checkpoint at --model; None: the bundled trained toy model
from ..registry import SELECTORS
from .datasets import Item, annotation_items, needle_items
from .grid import Grid


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adapttoken ablate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(parser)
    grid = parser.add_argument_group("grid (an axis left out takes the config's value)")
    grid.add_argument("--selectors", nargs="+", default=["uniform", "attention-topk", "adapttoken",
                                                          "adapttoken-lite"],
                      help="registered selector names, or `all` for every registered selector")
    grid.add_argument("--budgets", nargs="+", default=[], help="tokens (4096) or fractions of the video (1/16)")
    grid.add_argument("--tau", type=float, nargs="+", default=[])
    grid.add_argument("--theta", type=float, nargs="+", default=[])
    grid.add_argument("--scoring-layer", type=int, nargs="+", default=[])
    grid.add_argument("--frames-per-group", type=positive_int, nargs="+", default=[])
    grid.add_argument("--vary", nargs="+", default=[], metavar="KEY=V1,V2",
                      help="more axes: any selection or group-pass setting a selector declares (evs_threshold=0.8,0.9; "
                      "early_layer=2,3), expanded only for the selectors that read it")
    run = parser.add_argument_group("run")
    add_run_arguments(run)
    run.add_argument("--out", default="runs/ablate", help="output folder (results, table, plots; resumable)")
    run.add_argument("--cache", default=None, help="evidence cache folder (default: <out>/evidence)")
    return parser


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """The "dataset" options (`ablate`, `calibrate`): the needle set or an annotation file (`dataset_items`)."""
    data = parser.add_argument_group("dataset")
    data.add_argument("--dataset", default="needle", help="'needle' (generated) or a JSON/JSONL annotation file "
                      "(records: video, question, options, answer letter; optional id, subset)")
    data.add_argument("--questions", type=positive_int, default=24, help="needle: number of questions")
    data.add_argument("--lengths", type=positive_int, nargs="+", default=[256, 1024], help="needle: frames per video")
    data.add_argument("--seed", type=int, default=0, help="needle: question seed")
    data.add_argument("--videos", default="runs/needle_videos", help="needle: folder of the generated videos")


def add_run_arguments(run: argparse._ArgumentGroup) -> None:
    """The model, its settings and how it runs (`ablate`, `calibrate`)."""
    run.add_argument("--model", default=None, help="model directory (default: the bundled trained toy model)")
    run.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N, mps (default: cpu)")
    run.add_argument("--dtype", default="auto", choices=DTYPES, help="model dtype (default: auto, the checkpoint's "
                     "own)")
    run.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="other AdaptTokenConfig settings; they "
                     "hold for every item (the needle set's own fps and max_frames included)")
    run.add_argument("--max-new-tokens", type=positive_int, default=4)
    run.add_argument("--backend", default="auto", choices=VIDEO_BACKENDS,
                     help="video decoder (auto: torchcodec when it loads, else PyAV)")
    run.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's "
                     "choice)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")


def dataset_items(args: argparse.Namespace, given: set[str], console: Any) -> list[Item]:
    """The items of `--dataset` (needle videos written to `--videos` first, with a progress bar); an item's own
    settings (the needle set's fps and max_frames) give way to the settings named in `given` (`--set`)."""
    from rich.progress import Progress

    if args.dataset == "needle":
        with Progress(console=console, transient=True, disable=args.quiet) as progress:
            task = progress.add_task("needle videos (frames)", total=None)
            items = needle_items(args.questions, tuple(args.lengths), args.videos, seed=args.seed,
                                 on_frames=lambda done, total: progress.update(task, completed=done, total=total))
    else:
        items = annotation_items(args.dataset)
    return [dataclasses.replace(item, settings={k: v for k, v in item.settings.items() if k not in given})
            for item in items]


def vary_axes(items: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """["evs_threshold=0.8,0.9", ...] -> (("evs_threshold", ("0.8", "0.9")), ...); the Grid checks the names."""
    axes = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise ConfigError(f"--vary {item!r}: expected KEY=V1,V2,...")
        axes.append((key.strip().replace("-", "_"), tuple(v.strip() for v in values.split(","))))
    return tuple(axes)


def base_config(settings: list[str]) -> tuple[AdaptTokenConfig, set[str]]:
    """The config of `--set KEY=VALUE ...` and the names of the settings it gives."""
    values = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        values[key] = value
    return AdaptTokenConfig.from_dict(values), {_setting_name(key) for key in values}  # from_dict knows each key


def _setting_name(key: str) -> str:
    """The setting a `--set` key names (as `AdaptTokenConfig.from_dict` reads it)."""
    name = key[len("adapttoken_"):] if key.startswith("adapttoken_") else key
    return name.replace("-", "_")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_code("ablate", lambda: _ablate(args))


def _ablate(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from .runner import Sweep

    # everything that can be wrong is checked before a video is written or a model loads
    require("matplotlib", "adapttoken ablate (its plots accuracy.png and lite_time.png)", "bench")
    base, given = base_config(args.set)
    selectors = tuple(SELECTORS.names()) if args.selectors == ["all"] else tuple(args.selectors)
    grid = Grid(selectors, tuple(args.budgets), tuple(args.tau), tuple(args.theta),
                tuple(args.scoring_layer), tuple(args.frames_per_group), vary_axes(args.vary))
    check_device(args.device)
    check_output_folder(args.out, "--out")
    if args.cache is not None:
        check_output_folder(args.cache, "--cache")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    console = Console(stderr=True)
    if args.dataset == "needle":
        check_output_folder(args.videos, "--videos")
    items = dataset_items(args, given, console)
    model, processor = load_model(args.model, args.device, args.dtype)
    with Progress(console=console, transient=True, disable=args.quiet) as progress:
        sweep = Sweep(model, processor, base, grid, items, args.out, args.cache, args.max_new_tokens, args.backend)
        task = progress.add_task("runs", total=len(items) * len(sweep.specs))
        sweep.on_run = lambda row: progress.advance(task)
        report = sweep.run()
    out = Path(args.out)
    print((out / "table.md").read_text())
    rate = "n/a (no lookups)" if report.cache_hit_rate is None else f"{report.cache_hit_rate:.0%}"
    console.print(f"{report.ran} runs now, {report.skipped} already done; evidence cache: {report.cache_hits} hits, "
                  f"{report.cache_misses} misses (hit rate {rate}); {report.group_passes} group passes; "
                  f"{report.seconds:.1f} s")
    console.print(f"written: {out}/results.csv, results.json, results.jsonl, table.md, accuracy.png, lite_time.png")
    return 0
