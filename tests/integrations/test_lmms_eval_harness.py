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


def _needle_task(tmp_path: Path, docs: int) -> Path:
    """The needle task pointed at `docs` + 2 generated documents (`--limit` takes the first ones)."""
    annotations = write_needle_dataset(tmp_path / "data", count=docs + 2, num_frames=256)
    tasks = tmp_path / "tasks" / "adapttoken_needle"
    tasks.mkdir(parents=True)
    (tasks / "utils.py").write_text((TASK_YAML.parent / "utils.py").read_text())
    yaml_text = TASK_YAML.read_text().replace("runs/needle_eval/needle.jsonl", str(annotations))
    (tasks / TASK_YAML.name).write_text(yaml_text)
    return annotations


def _run(tmp_path: Path, docs: int, launcher: list[str]) -> subprocess.CompletedProcess:
    model_args = ",".join([f"pretrained={NEEDLE_MODEL_DIR}", "device=cpu", *(f"{k}={v}" for k, v in SETTINGS.items())])
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_SIZE")}
    env.update(HF_HUB_OFFLINE="1", LMMS_EVAL_DATASETS_CACHE=str(tmp_path / "datasets-cache"), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", *launcher, "--model", "adapttoken_qwen2_5_vl", "--model_args", model_args,
               "--tasks", "adapttoken_needle", "--include_path", str(tmp_path / "tasks"), "--limit", str(docs),
               "--output_path", str(tmp_path / "out"), "--log_samples"]
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def _scored(tmp_path: Path) -> tuple[float, list, int]:
    """(accuracy, logged replies, documents) of the one results file under tmp_path/out."""
    (results_file,) = (tmp_path / "out").rglob("*_results.json")
    results = json.loads(results_file.read_text())
    (samples_file,) = (tmp_path / "out").rglob("*_samples_adapttoken_needle.jsonl")
    replies = [json.loads(line)["filtered_resps"] for line in samples_file.read_text().splitlines()]
    return (results["results"]["adapttoken_needle"]["needle_acc,none"], replies,
            results["n-samples"]["adapttoken_needle"]["effective"])


def _pipeline_answers(annotations: Path, docs: int) -> tuple[list, list]:
    rows = [json.loads(line) for line in annotations.read_text().splitlines()][:docs]
    model, processor = load_needle_model()
    pipe = Pipeline(model, processor, AdaptTokenConfig.from_dict(SETTINGS))
    return rows, [pipe.answer(d["video"], d["question"], d["options"], max_new_tokens=1) for d in rows]


def test_lmms_eval_command_scores_what_the_pipeline_answers(tmp_path):
    annotations = _needle_task(tmp_path, DOCS)
    _run(tmp_path, DOCS, ["lmms_eval"])
    accuracy, replies, effective = _scored(tmp_path)
    assert effective == DOCS
    docs, answers = _pipeline_answers(annotations, DOCS)
    assert replies == [a.text for a in answers]
    assert 0.0 <= accuracy <= 1.0
    assert accuracy == sum(a.letter == d["answer"] for a, d in zip(answers, docs)) / DOCS
    assert accuracy > 0.25  # above chance: the selection found needles, not a constant guess


def test_lmms_eval_on_two_tensor_parallel_ranks_scores_every_document_once(tmp_path):
    """`adapttoken lmms-eval --tp 2 ...`: both ranks answer every document with
    half of the language model each; one results file, equal to the one-process Pipeline's answers."""
    docs = 4
    annotations = _needle_task(tmp_path, docs)
    run = _run(tmp_path, docs, ["adapttoken_plugin.cli", "lmms-eval", "--tp", "2"])
    log = run.stdout + run.stderr
    assert "split over 2 tensor-parallel ranks (DeepSpeed inference); this is rank 0" in log
    assert "split over 2 tensor-parallel ranks (DeepSpeed inference); this is rank 1" in log
    accuracy, replies, effective = _scored(tmp_path)  # exactly one results file: rank 0 writes
    rows, answers = _pipeline_answers(annotations, docs)
    assert effective == docs and replies == [a.text for a in answers]
    assert accuracy == sum(a.letter == d["answer"] for a, d in zip(answers, rows)) / docs
