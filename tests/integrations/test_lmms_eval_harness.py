"""The real `lmms-eval` command on the needle task with the bundled toy model, on the CPU, end to end.

The number in the results file must be the accuracy the streaming Pipeline gets on the same
documents when called directly (and each logged reply the Pipeline's reply), so the harness path
(registration, argument parsing, task loading, request building, scoring) is checked, not only run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from adapttoken_plugin import AdaptTokenConfig, Pipeline
from adapttoken_plugin.integrations.lmms_eval.needle_data import write_needle_dataset
from adapttoken_plugin.needle import VIDEO_FPS
from adapttoken_plugin.toy import NEEDLE_MODEL_DIR, load_needle_model

TASK_YAML = Path(__file__).resolve().parents[2] / "eval" / "tasks" / "adapttoken_needle" / "adapttoken_needle.yaml"
SETTINGS = dict(adapttoken_fps=VIDEO_FPS, adapttoken_max_frames=256, adapttoken_frames_per_group=64,
                adapttoken_budget=16, adapttoken_selector="adapttoken")
DOCS = 8


def test_lmms_eval_command_scores_what_the_pipeline_answers(tmp_path):
    annotations = write_needle_dataset(tmp_path / "data", count=DOCS + 2, num_frames=256)  # --limit takes the first 8
    tasks = tmp_path / "tasks" / "adapttoken_needle"
    tasks.mkdir(parents=True)
    (tasks / "utils.py").write_text((TASK_YAML.parent / "utils.py").read_text())
    yaml_text = TASK_YAML.read_text().replace("runs/needle_eval/needle.jsonl", str(annotations))
    (tasks / TASK_YAML.name).write_text(yaml_text)

    model_args = ",".join([f"pretrained={NEEDLE_MODEL_DIR}", "device=cpu", *(f"{k}={v}" for k, v in SETTINGS.items())])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LMMS_EVAL_DATASETS_CACHE": str(tmp_path / "datasets-cache")}
    command = [sys.executable, "-m", "lmms_eval", "--model", "adapttoken_qwen2_5_vl", "--model_args", model_args,
               "--tasks", "adapttoken_needle", "--include_path", str(tmp_path / "tasks"), "--limit", str(DOCS),
               "--output_path", str(tmp_path / "out"), "--log_samples"]
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    (results_file,) = (tmp_path / "out").rglob("*_results.json")
    results = json.loads(results_file.read_text())
    accuracy = results["results"]["adapttoken_needle"]["needle_acc,none"]
    assert results["n-samples"]["adapttoken_needle"]["effective"] == DOCS
    (samples_file,) = (tmp_path / "out").rglob("*_samples_adapttoken_needle.jsonl")
    replies = [json.loads(line)["filtered_resps"] for line in samples_file.read_text().splitlines()]

    docs = [json.loads(line) for line in annotations.read_text().splitlines()][:DOCS]
    model, processor = load_needle_model()
    pipe = Pipeline(model, processor, AdaptTokenConfig.from_dict(SETTINGS))
    answers = [pipe.answer(d["video"], d["question"], d["options"], max_new_tokens=1) for d in docs]
    assert replies == [a.text for a in answers]
    assert 0.0 <= accuracy <= 1.0
    assert accuracy == sum(a.letter == d["answer"] for a, d in zip(answers, docs)) / DOCS
    assert accuracy > 0.25  # above chance: the selection found needles, not a constant guess
