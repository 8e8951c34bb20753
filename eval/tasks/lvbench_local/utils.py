"""LVBench from a local copy (fields: video_path, question, answer letter; `options` when the question
text does not already list them as "(A) ...").

Same prompt and score (fraction correct) as lmms-eval's `lvbench`.
"""

from pathlib import Path

from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def lvbench_doc_to_visual(doc, lmms_eval_specific_kwargs):
    path = Path(lmms_eval_specific_kwargs["video_dir"]) / doc["video_path"]
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (lmms_eval_specific_kwargs.video_dir in lvbench_local.yaml)")
    return [str(path)]


def lvbench_doc_to_text(doc, lmms_eval_specific_kwargs):
    kwargs = lmms_eval_specific_kwargs
    options = [f"({LETTERS[i]}) {option}" for i, option in enumerate(doc.get("options") or [])]
    question = "\n".join([doc["question"], *options])
    return f"{kwargs.get('pre_prompt', '')}{question}{kwargs.get('post_prompt', '')}"


def lvbench_process_results(doc, results):
    predicted = extract_mcq_answer(results[0], choices=["A", "B", "C", "D"])
    return {"lvbench_score": float(predicted == doc["answer"])}
