"""Train the bundled toy model: a small Qwen2.5-VL-architecture model that answers needle questions.

Training examples look exactly like what the selector stage feeds the model at inference, built with
the same adapter code (`model_inputs`: visual tokens at their full-video M-RoPE positions, text after
the largest video position):
- *group* examples: one interleaved group (8-32 frame pairs, every G-th pair of a virtual video of up
  to ~5,000 pairs), all of its tokens;
- *sparse* examples: a few frame pairs from anywhere in a virtual video, some of their tokens
  (what a final pass after selection sees).
Examples come in minimal pairs: the same frames with and without the needle (a large shape in an
option colour over one or two frame pairs, sometimes over one frame of a pair only). With it the
target is the option letter; without it the target is uniform over the four letters, so the model
is confident only when it sees the evidence (entropy near 0 with the needle, near ln 4 = 1.386
without). The pairs matter: without
them the colour learnt last stays confused with "no needle", its letter becoming the default guess,
a shortcut the loss then barely penalises (seen here: red never learnt in 4,000 steps, twice).
The letter is followed by <|im_end|> so generation stops.

    python scripts/train_toy_model.py                       # writes adapttoken_plugin/assets/needle-toy
    python scripts/train_toy_model.py --steps 200 --out /tmp/toy   # a quick run

Deterministic for a given seed and thread count (2 threads by default).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from adapttoken_plugin.adapters.base import adapter_for
from adapttoken_plugin.layout import VideoLayout
from adapttoken_plugin.needle import OPTION_RGB, OPTIONS, QUESTION, VIDEO_FPS, overlay_shape, render_frame
from adapttoken_plugin.pipeline import Pipeline, format_question
from adapttoken_plugin.toy import NEEDLE_MODEL_DIR, toy_model, toy_processor

SIDE = 56  # frame side: 2 x 2 visual tokens per frame pair
TOKENS_PER_UNIT = 4
SHAPES = ("square", "disc", "diamond")


class Batcher:
    """Makes batches of training examples that share one sequence length."""

    def __init__(self, model, processor, seed: int, distractor_rate: float):
        self.model, self.processor = model, processor
        self.adapter = adapter_for(model)
        self.pipe = Pipeline(model, processor)
        self.prompt = self.pipe.prompt_parts(format_question(QUESTION, list(OPTIONS)))
        self.letter_ids = self.pipe.option_token_ids(4)
        self.eos_id = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.rng = np.random.default_rng(seed)
        self.distractor_rate = distractor_rate
        self.interval = 2.0 / VIDEO_FPS * self.adapter.tokens_per_second

    def _frames(self, n: int, t0: int) -> list[np.ndarray]:
        """Distractor-only frames (noise, grey shapes, needle-like shapes in non-option colours)."""
        return [render_frame(self.rng, None, SHAPES[int(self.rng.integers(3))],
                             self.rng.random() < self.distractor_rate, t0 + k, SIDE) for k in range(n)]

    def batch(self, size: int, max_units: int = 32):
        """`size` // 2 minimal pairs: an example with the needle and the same frames without it.
        `max_units` (frame pairs per example) grows during training: a curriculum from single pairs."""
        rng = self.rng
        kind = "group" if rng.random() < 0.6 else "sparse"
        if kind == "group":
            n_units = int(rng.integers(min(8, max_units), max_units + 1))
            n_keep = n_units * TOKENS_PER_UNIT
        else:
            n_units = int(rng.integers(1, max_units + 1))
            n_keep = int(rng.integers(n_units, n_units * TOKENS_PER_UNIT + 1))
        pixels, grids, plans = [], [], []
        for _ in range(size // 2):
            if kind == "group":
                stride = int(math.exp(rng.uniform(0, math.log(160))))
                total = stride * n_units + int(rng.integers(0, stride))
                units = int(rng.integers(0, stride)) + stride * np.arange(n_units)
            else:
                total = max(n_units, int(math.exp(rng.uniform(math.log(16), math.log(5000)))))
                units = np.sort(rng.choice(total, n_units, replace=False))
            colour = OPTIONS[int(rng.integers(4))]
            first = int(rng.integers(n_units))
            needle_units = {first} | ({first + 1} if kind == "sparse" and first + 1 < n_units
                                      and rng.random() < 0.5 else set())
            shape = SHAPES[int(rng.integers(3))]
            plain = [f for u in units for f in self._frames(2, int(u) * 2)]
            # a needle event can start or end inside a frame pair: then only one of its two frames shows it
            needle_frames = {2 * j + k for j in needle_units for k in (0, 1)}
            if rng.random() < 0.4:
                needle_frames.discard(2 * min(needle_units) + int(rng.integers(2)))
            with_needle = [overlay_shape(f, rng, OPTION_RGB[colour], shape) if i in needle_frames else f
                           for i, f in enumerate(plain)]
            # tokens to keep: the needle's first (all of them), then random others up to n_keep; same for the twin
            local = np.arange(n_units * TOKENS_PER_UNIT)
            is_needle = np.isin(local // TOKENS_PER_UNIT, list(needle_units))
            order = np.concatenate([rng.permutation(local[is_needle]), rng.permutation(local[~is_needle])])
            keep = np.sort(order[:n_keep])
            for frames, target_colour in ((with_needle, colour), (plain, None)):
                pixels.append(self.adapter.frames_to_pixels(self.processor, np.stack(frames)))
                grids.append(pixels[-1]["video_grid_thw"])
                plans.append((units, total, keep, target_colour))
        feats = self.adapter.encode({
            "pixel_values_videos": torch.cat([p["pixel_values_videos"] for p in pixels]),
            "video_grid_thw": torch.cat(grids),
        })
        per_sample = feats.split(n_units * TOKENS_PER_UNIT)
        ids, positions, kept_feats, targets = [], [], [], []
        for (units, total, keep, colour), f in zip(plans, per_sample):
            layout = VideoLayout(num_units=total, grid_h=2, grid_w=2, frames_per_unit=2, time_interval=self.interval)
            token_ids = torch.as_tensor(units)[keep // TOKENS_PER_UNIT] * TOKENS_PER_UNIT + torch.as_tensor(
                keep % TOKENS_PER_UNIT)
            inputs = self.adapter.model_inputs(self.prompt, layout, token_ids, f[torch.as_tensor(keep)])
            target = torch.zeros(len(self.letter_ids))
            if colour:
                target[OPTIONS.index(colour)] = 1.0
            else:
                target[:] = 0.25
            answer = self.letter_ids[OPTIONS.index(colour)] if colour else self.letter_ids[int(rng.integers(4))]
            ids.append(torch.cat([inputs["input_ids"][0], torch.tensor([answer])]))
            pos = inputs["position_ids"][:, 0]
            positions.append(torch.cat([pos, pos[:, -1:] + 1], 1))
            kept_feats.append(f[torch.as_tensor(keep)])
            targets.append(target)
        return {
            "input_ids": torch.stack(ids), "position_ids": torch.stack(positions, 1),
            "features": kept_feats, "targets": torch.stack(targets), "has_needle": torch.tensor(
                [p[3] is not None for p in plans]), "kind": kind,
        }


def forward_loss(model, batcher: Batcher, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, answer entropy per example, answer-position logits (B, V)) from one forward pass."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    ids = batch["input_ids"]
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=batch["position_ids"],
                mm_encoder_outputs={"video": BaseModelOutputWithPooling(pooler_output=tuple(batch["features"]))},
                logits_to_keep=2, use_cache=False)
    answer_logits, eos_logits = out.logits[:, 0], out.logits[:, 1]
    log_p = torch.log_softmax(answer_logits.float(), -1)
    letter_ids = torch.tensor(batcher.letter_ids)
    soft_ce = -(batch["targets"] * log_p[:, letter_ids]).sum(-1).mean()
    eos_ce = torch.nn.functional.cross_entropy(eos_logits.float(), torch.full((len(ids),), batcher.eos_id))
    entropy = -(log_p.exp() * log_p).sum(-1)
    return soft_ce + 0.2 * eos_ce, entropy, answer_logits


def evaluate(model, batcher: Batcher, batches: int = 12, size: int = 16) -> dict:
    """Held-out group examples: accuracy with the needle, entropy with / without it, and entropy per
    needle colour (a colour the model cannot see sits at ln 4 while its argmax may still look right)."""
    model.eval()
    correct = total = 0
    ent_with, ent_without = [], []
    per_colour: dict[str, list[float]] = {c: [] for c in OPTIONS}
    with torch.no_grad():
        for _ in range(batches):
            batch = batcher.batch(size)
            _, entropy, logits = forward_loss(model, batcher, batch)
            pred = logits[:, batcher.letter_ids].argmax(-1)
            has = batch["has_needle"]
            correct += int((pred[has] == batch["targets"][has].argmax(-1)).sum())
            total += int(has.sum())
            ent_with += entropy[has].tolist()
            ent_without += entropy[~has].tolist()
            for i in has.nonzero().flatten().tolist():
                per_colour[OPTIONS[int(batch["targets"][i].argmax())]].append(float(entropy[i]))
    model.train()
    return {"accuracy_with_needle": correct / max(1, total), "entropy_with_needle": float(np.mean(ent_with)),
            "entropy_without_needle": float(np.mean(ent_without)), "examples": total + len(ent_without),
            "entropy_by_colour": {c: round(float(np.mean(v)), 3) if v else None for c, v in per_colour.items()}}



def train_and_save(model, processor, train, args, max_units, progress, final, eval_every: int,
                   before_step=None, log_extra: dict | None = None) -> dict:
    """The training loop both toy models share: AdamW with a one-cycle schedule over `args.steps` batches of
    `args.batch` examples, whose frame pairs grow with the curriculum ramp (0 -> 1 over `args.curriculum` of the
    steps) as `max_units(ramp)`; every `eval_every` steps the metrics of `progress()` are logged, at the end those
    of `final()`; the model, its processor and the training log are written to `args.out`. `before_step(step)`,
    when given, runs before each step's batch is drawn (a curriculum of the caller's own). Returns the training log
    (`args`, `log`, `held_out`, and the items of `log_extra`: earlier stages of the caller's own)."""
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)
    log = []
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        if before_step is not None:
            before_step(step)
        ramp = min(1.0, step / max(1, args.curriculum * args.steps))
        batch = train.batch(args.batch, max_units=max_units(ramp))
        loss, _, _ = forward_loss(model, train, batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % eval_every == 0 or step == args.steps:
            metrics = {"step": step, "loss": loss.item(), "seconds": time.perf_counter() - start, **progress()}
            log.append(metrics)
            print(json.dumps(metrics), flush=True)
    held_out = {"step": args.steps, "seconds": time.perf_counter() - start, **final()}
    print("held-out:", json.dumps(held_out), flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    record = {"args": vars(args), "log": log, "held_out": held_out, **(log_extra or {})}
    (out / "training_log.json").write_text(json.dumps(record, indent=1))
    print(f"saved to {out}")
    return record

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--distractor-rate", type=float, default=0.15)
    parser.add_argument("--curriculum", type=float, default=0.5,
                        help="fraction of the steps over which examples grow from 1 to 32 frame pairs")
    parser.add_argument("--out", default=str(NEEDLE_MODEL_DIR))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    processor = toy_processor(min_pixels=SIDE * SIDE, max_pixels=SIDE * SIDE)
    model = toy_model(seed=args.seed, num_layers=args.layers, hidden_size=args.hidden)
    model.train()
    train = Batcher(model, processor, seed=args.seed, distractor_rate=args.distractor_rate)
    held_out = Batcher(model, processor, seed=args.seed + 10_000, distractor_rate=args.distractor_rate)
    train_and_save(model, processor, train, args, max_units=lambda ramp: max(1, round(32 ** ramp)),
                   progress=lambda: evaluate(model, held_out, batches=4), final=lambda: evaluate(model, held_out),
                   eval_every=250)


if __name__ == "__main__":
    main()
