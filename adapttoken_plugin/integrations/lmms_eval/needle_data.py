"""Local data of the `adapttoken_needle` lmms-eval task (eval/tasks/adapttoken_needle): mp4s + a jsonl.

    python -m adapttoken_plugin.integrations.lmms_eval.needle_data --out runs/needle_eval --count 32 --frames 256

writes `<out>/videos/q<seed>.mp4` (PyAV, `needle.VIDEO_FPS`) and `<out>/needle.jsonl`, one document
per line: `question_id`, `video` (absolute path), `question`, `options`, `answer` (letter),
`num_frames`, `needle_frames`. Existing videos are reused (they are deterministic by seed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...needle import question_set, write_video_file

ANNOTATIONS = "needle.jsonl"


def write_needle_dataset(out_dir: str | Path, count: int = 32, num_frames: int = 256, seed: int = 0) -> Path:
    """Write `count` needle questions over `num_frames`-frame videos under `out_dir`; returns the jsonl path."""
    out = Path(out_dir).resolve()
    rows = []
    for q in question_set(count, (num_frames,), seed=seed):
        video = write_video_file(q, out / "videos" / f"q{q.seed}.mp4")
        rows.append({"question_id": f"needle-{q.seed}", "video": str(video), "question": q.question,
                     "options": q.options, "answer": q.answer_letter, "num_frames": q.num_frames,
                     "needle_frames": q.needle_frames})
    path = out / ANNOTATIONS
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/needle_eval", help="output directory (default: runs/needle_eval)")
    parser.add_argument("--count", type=int, default=32, help="questions (default: 32)")
    parser.add_argument("--frames", type=int, default=256, help="frames per video (default: 256)")
    parser.add_argument("--seed", type=int, default=0, help="question-set seed (default: 0)")
    args = parser.parse_args(argv)
    print(write_needle_dataset(args.out, args.count, args.frames, args.seed))


if __name__ == "__main__":
    main()
