"""Peak memory and time: the streaming pipeline vs the unmodified model given the whole video at once.

Modes: `pipeline` (AdaptToken, frame_cache=memory: sampled frames decoded once into RAM),
`pipeline-off` (frame_cache=off: each group decoded on demand, least memory) and `one-piece` (the
unmodified model on the whole clip through its processor).

Each measurement runs in a fresh subprocess (peak RSS is per process) on the tiny toy model, so the
numbers isolate what the *input handling* costs: decoded frames, pixel tensors, visual features and
activations. Prints a markdown table and writes JSON.

    python scripts/bench_memory.py                        # 256, 1024, 8192 frames
    python scripts/bench_memory.py --frames 256 1024 --out runs/bench_memory.json
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


def worker(mode: str, video: str, frames: int, budget: int) -> dict:
    """One measurement in this process (see the module docstring for the modes)."""
    import torch

    from adapttoken_plugin import AdaptTokenConfig, Pipeline
    from adapttoken_plugin.toy import toy_model, toy_processor
    from adapttoken_plugin.video import FrameReader, sample_frame_indices

    torch.set_num_threads(2)
    model = toy_model()
    processor = toy_processor(min_pixels=FRAME_SIDE**2, max_pixels=FRAME_SIDE**2)
    config = AdaptTokenConfig(fps=VIDEO_FPS, max_frames=frames, budget=budget, frames_per_group=64,
                              frame_cache="off" if mode == "pipeline-off" else "memory")
    question = "What colour is the square?"
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
    return {"mode": mode, "frames": frames, "seconds": time.perf_counter() - start,
            "peak_rss_mb": peak_rss_mb(), "rss_before_mb": base, "peak_over_base_mb": peak_rss_mb() - base, **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[256, 1024, 8192])
    parser.add_argument("--budget", type=int, default=512)
    parser.add_argument("--out", default="runs/bench_memory.json")
    parser.add_argument("--cache", default="runs/bench_videos", help="folder for the generated test videos")
    parser.add_argument("--worker", nargs=4, metavar=("MODE", "VIDEO", "FRAMES", "BUDGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        mode, video, frames, budget = args.worker
        print(json.dumps(worker(mode, video, int(frames), int(budget))))
        return

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for frames in args.frames:
        video = make_video(cache / f"noise_{frames}.mp4", frames)
        for mode in ("pipeline", "pipeline-off", "one-piece"):
            proc = subprocess.run([sys.executable, __file__, "--worker", mode, str(video), str(frames),
                                   str(args.budget)], capture_output=True, text=True)
            if proc.returncode != 0:
                rows.append({"mode": mode, "frames": frames, "error": proc.stderr.strip().splitlines()[-1:]})
            else:
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(rows[-1], file=sys.stderr)

    print("\n| frames | mode | visual tokens | kept | seconds | peak RSS over start (MiB) |\n|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['frames']} | {r['mode']} | - | - | - | failed: {r['error']} |")
            continue
        print(f"| {r['frames']} | {r['mode']} | {r.get('total_tokens', '-')} | {r.get('kept_tokens', 'all')} | "
              f"{r['seconds']:.2f} | {r['peak_over_base_mb']:.0f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"frame_side": FRAME_SIDE, "budget": args.budget, "rows": rows}, indent=1))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
