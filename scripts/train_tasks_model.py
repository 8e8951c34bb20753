"""Train the bundled tasks toy model: a small Qwen2.5-VL-architecture model for the six benchmark tasks.

The recipe of `scripts/train_toy_model.py` (whose loss it imports), on the mix of
`adapttoken_plugin.bench_tasks` (needle, order, count, detail, distractor, salient-order) at 112 x 112 px
(4 x 4 visual tokens per frame pair). Examples are built with the adapter's own `model_inputs`, so they look like what
the selector stage feeds the model: *group* examples (4-16 frame pairs of a virtual video of up to
~2,500 pairs, every G-th pair, all tokens) and *sparse* examples (a few pairs from anywhere, the
evidence pairs' tokens then random others: a final pass after selection). Each batch is one task (one
question text), in minimal pairs: the same frames with and without the evidence. The target is the
task's `answer_distribution` given the evidence events drawn: one-hot with all of it, uniform without
it, and for `order`, `salient-order` and `count` sometimes only part of it (one of the two order events: 1/2
on its colour; some of the flashes: the count of those drawn).

The mix alone does not learn `count`. `--count-stages N1 N2` (by default 2000 1500 from scratch, none with `--init`)
adds two stages in the same command, each from the weights of the one before (settings in `COUNT_STAGES`): N1
steps of mostly `count` batches (sparse and short, one flash shown first, the other tasks at 0.1 so that they stay
learnt, learning rate 5e-4), then N2 steps at 2e-4 with the other tasks at 0.2. Each is the same as another run
with `--init` on the output of the one before.

    python scripts/train_tasks_model.py                  # writes adapttoken_plugin/assets/tasks-toy: the mix (2,000
                                                         # steps, hidden 128, 23 min on 2 cores), then the count
                                                         # stages (2,000 + 1,500 steps, 71 min on one thread)
    python scripts/train_tasks_model.py --count-stages --out /tmp/mix             # the mix alone
    python scripts/train_tasks_model.py --steps 200 --count-stages --out /tmp/tasks   # a quick run
    python scripts/train_tasks_model.py --init adapttoken_plugin/assets/tasks-toy --evaluate 4   # 64 new examples each
    python scripts/train_tasks_model.py --init /tmp/tasks --curriculum 0 --weights count=3 order=2   # go on
    python scripts/train_tasks_model.py --count-curriculum 0.6 --weights count=1 needle=0 order=0 detail=0 \
        distractor=0 salient-order=0 --steps 1000 --count-stages --out /tmp/count   # count alone, one flash first

Deterministic for a given seed and thread count (2 threads by default; the count stages: `--count-stage-threads`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from adapttoken_plugin.adapters.base import adapter_for
from adapttoken_plugin.bench_tasks import TASKS, TaskQuestion, iter_frames
from adapttoken_plugin.bench_tasks.base import FRAME_SIDE, TOKEN_SIDE, draw_event
from adapttoken_plugin.layout import VideoLayout
from adapttoken_plugin.needle import VIDEO_FPS
from adapttoken_plugin.pipeline import Pipeline, format_question
from adapttoken_plugin.toy import TASKS_MODEL_DIR, toy_model, toy_processor

sys.path.insert(0, str(Path(__file__).parent))
from train_toy_model import forward_loss, train_and_save  # noqa: E402  (the needle recipe's loss and loop)

GRID = FRAME_SIDE // TOKEN_SIDE  # visual tokens per side of a frame pair
TOKENS_PER_UNIT = GRID * GRID
# frame pairs a local video needs so that every event fits (count: 4 flashes with gaps; order: 2 events)
MIN_UNITS = {"needle": 1, "detail": 4, "distractor": 4, "order": 9, "count": 14, "salient-order": 9}
PARTIAL = ("order", "count", "salient-order")  # tasks with several evidence events, trained also on some of them


class TaskBatcher:
    """Makes batches of one task's training examples that share one sequence length."""

    def __init__(self, model, processor, seed: int, max_units: int = 16, weights: dict[str, float] | None = None):
        self.processor = processor
        self.adapter = adapter_for(model)
        self.pipe = Pipeline(model, processor)
        self.letter_ids = self.pipe.option_token_ids(4)
        self.eos_id = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.rng = np.random.default_rng(seed)
        self.max_units = max_units
        self.max_flashes = 4  # count examples show at most this many of their flashes (the count curriculum)
        self.count_sparse = 0.4  # share of count batches that are sparse (a few of the tokens: short contexts)
        self.count_min_keep = 8  # frame pairs' worth of tokens a sparse count example keeps at least
        self.interval = 2.0 / VIDEO_FPS * self.adapter.tokens_per_second
        self.tasks = tuple(TASKS)
        w = np.array([(weights or {}).get(t, 1.0) for t in self.tasks], dtype=float)
        self.task_p = w / w.sum()  # how often each task's batches are drawn

    def _question(self, task: str, n_units: int, text: str | None) -> TaskQuestion:
        """A local question over 2 * n_units frames (its text equal to `text` when given)."""
        while True:
            try:
                q = TASKS[task].make(int(self.rng.integers(2**31)), 2 * n_units)
            except ValueError:  # the first event left no room for the others in so short a video: redraw
                continue
            if text is None or q.question == text:
                return q

    def batch(self, size: int, task: str | None = None, max_units: int | None = None) -> dict:
        """`size` // 2 minimal pairs of one task (random when None); up to `max_units` frame pairs each."""
        rng = self.rng
        task = task or self.tasks[int(rng.choice(len(self.tasks), p=self.task_p))]
        top = max(MIN_UNITS[task], max_units or self.max_units)
        kind = "group" if rng.random() < 1 - (self.count_sparse if task == "count" else 0.4) else "sparse"
        n_units = int(rng.integers(max(MIN_UNITS[task], min(4, top)), top + 1))
        # sparse: one token count for the batch (one sequence length), enough for every evidence token
        # (at most 8 frame pairs: two order events of 3 pairs, a needle of 8 frames over 5 pairs; count's
        # flashes are at most 4 pairs)
        all_tokens = n_units * TOKENS_PER_UNIT
        least = (self.count_min_keep if task == "count" else 8) * TOKENS_PER_UNIT
        n_keep = all_tokens if kind == "group" else int(rng.integers(min(all_tokens, least), all_tokens + 1))
        text = None
        pixels, plans = [], []
        for _ in range(size // 2):
            q = self._question(task, n_units, text)
            text = q.question
            if kind == "group":
                stride = int(math.exp(rng.uniform(0, math.log(160))))
                total = stride * n_units + int(rng.integers(0, stride))
                units = int(rng.integers(0, stride)) + stride * np.arange(n_units)
            else:
                total = max(n_units, int(math.exp(rng.uniform(math.log(16), math.log(2500)))))
                units = np.sort(rng.choice(total, n_units, replace=False))
            evidence = [i for i, e in enumerate(q.events) if e.evidence]
            shown = set(evidence)
            if task in PARTIAL and rng.random() < 0.35:
                shown = {int(i) for i in rng.choice(evidence, int(rng.integers(1, len(evidence) + 1)), replace=False)}
            if task == "count" and len(shown) > self.max_flashes:  # the count curriculum: few flashes first
                shown = {int(i) for i in rng.choice(sorted(shown), int(rng.integers(1, self.max_flashes + 1)),
                                                    replace=False)}
            plain = list(iter_frames(q, shown=set()))
            with_evidence = [f.copy() for f in plain]
            for i in shown:
                for t in q.events[i].frames:
                    draw_event(with_evidence[t], q, i, t)
            ev_units = sorted({t // 2 for i in shown for t in q.events[i].frames})
            local = np.arange(n_units * TOKENS_PER_UNIT)
            is_ev = np.isin(local // TOKENS_PER_UNIT, ev_units)
            order = np.concatenate([rng.permutation(local[is_ev]), rng.permutation(local[~is_ev])])
            keep = np.sort(order[:n_keep])
            for frames, seen in ((with_evidence, shown), (plain, set())):
                pixels.append(self.adapter.frames_to_pixels(self.processor, np.stack(frames)))
                plans.append((units, total, keep, TASKS[task].answer_distribution(q, seen), bool(seen)))
        feats = self.adapter.encode({
            "pixel_values_videos": torch.cat([p["pixel_values_videos"] for p in pixels]),
            "video_grid_thw": torch.cat([p["video_grid_thw"] for p in pixels]),
        })
        prompt = self.pipe.prompt_parts(format_question(text, list(q.options)))
        ids, positions, kept_feats, targets = [], [], [], []
        for (units, total, keep, target, _), f in zip(plans, feats.split(n_units * TOKENS_PER_UNIT)):
            layout = VideoLayout(num_units=total, grid_h=GRID, grid_w=GRID, frames_per_unit=2,
                                 time_interval=self.interval)
            keep_t = torch.as_tensor(keep)
            token_ids = torch.as_tensor(units)[keep_t // TOKENS_PER_UNIT] * TOKENS_PER_UNIT + keep_t % TOKENS_PER_UNIT
            inputs = self.adapter.model_inputs(prompt, layout, token_ids, f[keep_t])
            answer = self.letter_ids[int(rng.choice(4, p=target))]
            ids.append(torch.cat([inputs["input_ids"][0], torch.tensor([answer])]))
            pos = inputs["position_ids"][:, 0]
            positions.append(torch.cat([pos, pos[:, -1:] + 1], 1))
            kept_feats.append(f[keep_t])
            targets.append(torch.as_tensor(target, dtype=torch.float32))
        return {"input_ids": torch.stack(ids), "position_ids": torch.stack(positions, 1), "features": kept_feats,
                "targets": torch.stack(targets), "has_needle": torch.tensor([p[4] for p in plans]),
                "full": torch.tensor([p[3].max() == 1.0 for p in plans]), "kind": kind, "task": task}


def evaluate(model, batcher: TaskBatcher, batches_per_task: int = 2, size: int = 16) -> dict:
    """Held-out examples per task: accuracy and entropy with all the evidence (one-hot target), entropy
    without any, and mean entropy with part of it (order, count)."""
    model.eval()
    out = {}
    with torch.no_grad():
        for task in batcher.tasks:
            correct = total = 0
            ent = {"with": [], "without": [], "partial": []}
            for _ in range(batches_per_task):
                batch = batcher.batch(size, task=task)
                _, entropy, logits = forward_loss(model, batcher, batch)
                pred = logits[:, batcher.letter_ids].argmax(-1)
                full, has = batch["full"], batch["has_needle"]
                correct += int((pred[full] == batch["targets"][full].argmax(-1)).sum())
                total += int(full.sum())
                ent["with"] += entropy[full].tolist()
                ent["without"] += entropy[~has].tolist()
                ent["partial"] += entropy[has & ~full].tolist()
            out[task] = {"accuracy_with_evidence": correct / max(1, total), "examples_with": total,
                         **{f"entropy_{k}": round(float(np.mean(v)), 3) if v else None for k, v in ent.items()}}
    model.train()
    return out


# The stages after the mix that teach `count` (`--count-stages`), each from the weights of the one before: mostly
# count batches (the other tasks at 0.1 so that they stay learnt), count examples mostly sparse and short, one flash
# shown first; then the same at a lower learning rate with the other tasks at 0.2.
COUNT_STAGES = (
    {"lr": 5e-4, "curriculum": 0.0, "count_curriculum": 0.3, "count_sparse": 0.8, "count_min_keep": 4,
     "weights": [f"{t}={1.0 if t == 'count' else 0.1}" for t in TASKS]},
    {"lr": 2e-4, "curriculum": 0.0, "count_curriculum": 0.0, "count_sparse": 0.8, "count_min_keep": 4,
     "weights": [f"{t}={1.0 if t == 'count' else 0.2}" for t in TASKS]},
)
#: the steps of the count stages of the bundled model: what a run from scratch does unless told otherwise
DEFAULT_COUNT_STAGES = (2000, 1500)


def parse_weights(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, float]:
    weights = {}
    for item in items:
        task, _, value = item.partition("=")
        if task not in TASKS or not value:
            parser.error(f"--weights takes TASK=W with TASK one of {sorted(TASKS)}; got {item!r}")
        weights[task] = float(value)
    return weights


def train_stage(model, processor, args, weights: dict[str, float], log_extra: dict | None = None) -> dict:
    """One stage of training (`args`: the command's settings for it) from `model`'s weights; returns its log."""
    torch.set_num_threads(args.threads)
    model.train()
    train = TaskBatcher(model, processor, seed=args.seed, max_units=args.max_units, weights=weights)
    train.count_sparse, train.count_min_keep = args.count_sparse, args.count_min_keep
    held_out = TaskBatcher(model, processor, seed=args.seed + 10_000, max_units=args.max_units)

    def count_curriculum(step: int) -> None:
        """Count examples show at most 1, 2, 3, then 4 flashes over the first --count-curriculum of the steps."""
        share = step / max(1, args.count_curriculum * args.steps)
        train.max_flashes = min(4, 1 + int(4 * share)) if args.count_curriculum > 0 else 4

    return train_and_save(model, processor, train, args,
                          max_units=lambda ramp: max(1, round(args.max_units ** ramp)),
                          progress=lambda: {"held_out": evaluate(model, held_out, batches_per_task=1)},
                          final=lambda: {"per_task": evaluate(model, held_out)}, eval_every=args.eval_every,
                          before_step=count_curriculum, log_extra=log_extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--lr", type=float, default=7e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-units", type=int, default=16, help="frame pairs per example at most")
    parser.add_argument("--curriculum", type=float, default=0.4,
                        help="fraction of the steps over which examples grow from few to --max-units frame pairs")
    parser.add_argument("--count-curriculum", type=float, default=0.0,
                        help="fraction of the steps over which count examples grow from one shown flash to four "
                             "(0: all four from the start)")
    parser.add_argument("--count-sparse", type=float, default=0.4,
                        help="share of count batches that are sparse examples (the others: whole groups)")
    parser.add_argument("--count-min-keep", type=int, default=8,
                        help="a sparse count example keeps at least this many frame pairs' worth of tokens (4: "
                             "contexts as short as the flashes themselves)")
    parser.add_argument("--count-stages", type=int, nargs="*", metavar="STEPS",
                        help=f"steps of up to {len(COUNT_STAGES)} stages after the first, each from the weights of the "
                             "one before, with the settings of COUNT_STAGES (mostly count batches); default: "
                             f"{' '.join(map(str, DEFAULT_COUNT_STAGES))} from scratch (the bundled model), none with "
                             "--init; the option alone: none")
    parser.add_argument("--count-stage-threads", type=int, default=1, help="torch threads of the count stages")
    parser.add_argument("--init", help="a model directory to go on training from (its size replaces --hidden/--layers)")
    parser.add_argument("--weights", nargs="*", default=[], metavar="TASK=W",
                        help="relative frequency of a task's batches (default 1 each), e.g. count=3")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--evaluate", type=int, metavar="BATCHES",
                        help="train nothing: print the --init model's accuracy and entropy per task on BATCHES batches "
                             "of 16 examples per task, drawn with seed --seed + 20,000 (not the training log's)")
    parser.add_argument("--out", default=str(TASKS_MODEL_DIR))
    args = parser.parse_args()
    weights = parse_weights(parser, args.weights)
    if args.evaluate and not args.init:
        parser.error("--evaluate needs --init MODEL_DIR")
    if args.count_stages is None:
        args.count_stages = [] if args.init else list(DEFAULT_COUNT_STAGES)
    if len(args.count_stages) > len(COUNT_STAGES):
        parser.error(f"--count-stages takes at most {len(COUNT_STAGES)} step counts")

    torch.manual_seed(args.seed)
    processor = toy_processor(min_pixels=FRAME_SIDE * FRAME_SIDE, max_pixels=FRAME_SIDE * FRAME_SIDE)
    if args.init:
        from transformers import Qwen2_5_VLForConditionalGeneration

        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(args.init)
        model.set_attn_implementation("sdpa")
    else:
        model = toy_model(seed=args.seed, num_layers=args.layers, hidden_size=args.hidden)
    if args.evaluate:
        torch.set_num_threads(args.threads)
        batcher = TaskBatcher(model, processor, seed=args.seed + 20_000, max_units=args.max_units)
        print(json.dumps(evaluate(model, batcher, batches_per_task=args.evaluate), indent=1))
        return
    earlier = {}
    record = train_stage(model, processor, args, weights)
    for i, (steps, settings) in enumerate(zip(args.count_stages, COUNT_STAGES)):
        earlier[f"stage_{i + 1}"] = {k: v for k, v in record.items() if not k.startswith("stage_")}
        # as if run again with --init on the stage before's output: same seeds, a fresh optimiser and batchers
        torch.manual_seed(args.seed)
        stage = argparse.Namespace(**{**vars(args), **settings, "steps": steps, "threads": args.count_stage_threads,
                                      "count_stages": [], "init": args.out})
        record = train_stage(model, processor, stage, parse_weights(parser, stage.weights), log_extra=dict(earlier))


if __name__ == "__main__":
    main()
