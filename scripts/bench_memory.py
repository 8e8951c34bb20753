"""Peak memory and time: the streaming pipeline vs the unmodified model given the whole video at once.

Modes: `pipeline` (AdaptToken, frame_cache=memory: sampled frames decoded once into RAM),
`pipeline-off` (frame_cache=off: each group decoded on demand, least memory), `pipeline-full` (the
`full` selector: no group pass, so no scoring hook) and `one-piece` (the unmodified model on the whole
clip through its processor).

Two tables: peak memory against the video's length (`--frames`, a short question), then against the
question's length (`--question-chars`, characters of question text: one token per character on the toy
model's byte-level tokenizer; `--question-frames` frames). Each measurement runs in a fresh subprocess
(peak RSS is per process) on the tiny toy model, so the numbers isolate what the *input handling* costs:
decoded frames, pixel tensors, visual features, the scoring rows and activations. Prints markdown tables
and writes JSON.

    python scripts/bench_memory.py                        # 256, 1024, 8192 frames; 100 to 10,000 characters
    python scripts/bench_memory.py --frames --question-chars 100000   # the question table only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

FRAME_SIDE = 56  # 56 x 56 px frames: 2 x 2 visual tokens per frame pair on the toy model
VIDEO_FPS = 8.0


def rss_mb() -> float:
    """Current resident set size of this process, MiB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_video(path: Path, frames: int) -> Path:
    import numpy as np

    from adapttoken_plugin.video import write_video

    if not path.exists():
        rng = np.random.default_rng(frames)
        write_video(path, (rng.integers(0, 255, (FRAME_SIDE, FRAME_SIDE, 3), dtype=np.uint8) for _ in range(frames)),
                    fps=VIDEO_FPS)
    return path


def long_question(chars: int) -> str:
    """A question of `chars` characters (words of a fixed text, repeated, then the question itself)."""
    ask = "What colour is the square?"
    filler = "Consider every frame of the video carefully before answering the question below. "
    text = (filler * (chars // len(filler) + 1))[: max(0, chars - len(ask) - 1)]
    return f"{text} {ask}" if text else ask


def worker(mode: str, video: str, frames: int, budget: int, question_chars: int = 0) -> dict:
    """One measurement in this process (see the module docstring for the modes)."""
    import torch

    from adapttoken_plugin import AdaptTokenConfig, Pipeline
    from adapttoken_plugin.toy import toy_model, toy_processor
    from adapttoken_plugin.video import FrameReader, sample_frame_indices

    torch.set_num_threads(2)
    model = toy_model()
    processor = toy_processor(min_pixels=FRAME_SIDE**2, max_pixels=FRAME_SIDE**2)
    config = AdaptTokenConfig(fps=VIDEO_FPS, max_frames=frames, budget=budget, frames_per_group=64,
                              frame_cache="off" if mode == "pipeline-off" else "memory",
                              selector="full" if mode == "pipeline-full" else "adapttoken")
    question = long_question(question_chars)
    base = rss_mb()
    start = time.perf_counter()
    if mode.startswith("pipeline"):
        answer = Pipeline(model, processor, config).answer(video, question, ["red", "green", "blue", "yellow"])
        extra = {"kept_tokens": answer.trace.kept_tokens, "total_tokens": answer.trace.total_tokens,
                 "groups": len(answer.trace.groups), "seconds_by_stage": answer.trace.seconds}
    else:
        with FrameReader(video) as reader:
            indices = sample_frame_indices(reader.info, VIDEO_FPS, frames, multiple_of=2)
            clip = reader.read(indices.tolist())
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[text], videos=[clip], return_tensors="pt", do_sample_frames=False,
                           cap_pixels_per_frame=False)
        del clip
        with torch.no_grad():
            model.generate(**inputs, max_new_tokens=16, do_sample=False)
        extra = {"total_tokens": int((inputs["input_ids"] == model.config.video_token_id).sum())}
    return {"mode": mode, "frames": frames, "question_chars": len(question), "seconds": time.perf_counter() - start,
            "peak_rss_mb": peak_rss_mb(), "rss_before_mb": base, "peak_over_base_mb": peak_rss_mb() - base, **extra}


def measure(mode: str, video: Path, frames: int, budget: int, question_chars: int) -> dict:
    """`worker` in a fresh process; a failure (out of memory, a raised error) becomes the row's `error`."""
    proc = subprocess.run([sys.executable, __file__, "--worker", mode, str(video), str(frames), str(budget),
                           str(question_chars)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"mode": mode, "frames": frames, "question_chars": question_chars,
                "error": proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="*", default=[256, 1024, 8192])
    parser.add_argument("--budget", type=int, default=512)
    parser.add_argument("--question-chars", type=int, nargs="*", default=[100, 1000, 10_000],
                        help="question lengths (characters) of the second table (100000: about 40 minutes on 2 cores)")
    parser.add_argument("--question-frames", type=int, default=64, help="frames of the second table's video")
    parser.add_argument("--question-budget", type=int, default=32, help="budget of the second table")
    parser.add_argument("--out", default="runs/bench_memory.json")
    parser.add_argument("--cache", default="runs/bench_videos", help="folder for the generated test videos")
    parser.add_argument("--worker", nargs=5, metavar=("MODE", "VIDEO", "FRAMES", "BUDGET", "CHARS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        mode, video, frames, budget, chars = args.worker
        print(json.dumps(worker(mode, video, int(frames), int(budget), int(chars))))
        return

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    rows, question_rows = [], []
    for frames in args.frames:
        video = make_video(cache / f"noise_{frames}.mp4", frames)
        for mode in ("pipeline", "pipeline-off", "one-piece"):
            rows.append(measure(mode, video, frames, args.budget, 0))
            print(rows[-1], file=sys.stderr)
    if args.question_chars:
        video = make_video(cache / f"noise_{args.question_frames}.mp4", args.question_frames)
        for chars in args.question_chars:
            for mode in ("pipeline", "pipeline-full", "one-piece"):
                question_rows.append(measure(mode, video, args.question_frames, args.question_budget, chars))
                print(question_rows[-1], file=sys.stderr)

    if rows:
        print("\n| frames | mode | visual tokens | kept | seconds | peak RSS over start (MiB) |\n"
              "|---|---|---|---|---|---|")
        for r in rows:
            if "error" in r:
                print(f"| {r['frames']} | {r['mode']} | - | - | - | failed: {r['error']} |")
                continue
            print(f"| {r['frames']} | {r['mode']} | {r.get('total_tokens', '-')} | {r.get('kept_tokens', 'all')} | "
                  f"{r['seconds']:.2f} | {r['peak_over_base_mb']:.0f} |")
    if question_rows:
        print(f"\n{args.question_frames} frames, budget {args.question_budget}:\n\n| question characters | mode | "
              "visual tokens | kept | seconds | peak RSS over start (MiB) |\n|---|---|---|---|---|---|")
        for r in question_rows:
            if "error" in r:
                print(f"| {r['question_chars']} | {r['mode']} | - | - | - | failed: {r['error']} |")
                continue
            print(f"| {r['question_chars']} | {r['mode']} | {r.get('total_tokens', '-')} | "
                  f"{r.get('kept_tokens', 'all')} | {r['seconds']:.2f} | {r['peak_over_base_mb']:.0f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"frame_side": FRAME_SIDE, "budget": args.budget, "rows": rows,
                                          "question_frames": args.question_frames,
                                          "question_budget": args.question_budget,
                                          "question_rows": question_rows}, indent=1))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
