"""`adapttoken answer --tp 2`: the launcher starts 2 ranks under torchrun; the answer and the kept tokens
equal the single-process command's, and only rank 0 reports and writes the trace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from adapttoken_plugin.cli import main
from adapttoken_plugin.needle import make_question, write_video_file
from adapttoken_plugin.toy import NEEDLE_MODEL_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_answer_on_two_ranks_equals_one_process(tmp_path, capsys):
    question = make_question(seed=3, num_frames=128)
    video = write_video_file(question, tmp_path / "needle.mp4")
    args = ["answer", "--model", str(NEEDLE_MODEL_DIR), "--video", str(video), "--question", question.question,
            "--options", *question.options, "--budget", "16", "--frames-per-group", "32", "--fps", "4",
            "--max-frames", "128", "--quiet", "--max-new-tokens", "4"]
    assert main([*args, "--trace", str(tmp_path / "one.json")]) == 0
    single_out = capsys.readouterr().out
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([sys.executable, "-m", "adapttoken_plugin.cli", *args, "--tp", "2", "--trace",
                           str(tmp_path / "tp.json")], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    one, tp = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("one", "tp"))
    assert len(one["kept_token_ids"]) == 16 and one["num_frames"] == 128
    assert tp["kept_token_ids"] == one["kept_token_ids"]
    for a, b in zip(tp["groups"], one["groups"]):
        assert abs(a["entropy"] - b["entropy"]) < 1e-5 and a["budget"] == b["budget"]
    answer_line = [line for line in single_out.splitlines() if line.startswith("answer:")]
    assert len(answer_line) == 1
    assert [line for line in done.stdout.splitlines() if line.startswith("answer:")] == answer_line  # rank 0 only

