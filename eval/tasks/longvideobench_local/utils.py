"""LongVideoBench (validation, video input) from a local copy of `lvb_val.json` (fields: id, video_path,
question, candidates [...] or option0..option4 with "N/A" for absent ones, correct_choice index,
duration_group, question_category).

Same prompt and accuracy (fraction in [0, 1]) as lmms-eval's `longvideobench_val_v`. One difference:
a reply that names no option letter counts as wrong here, where lmms-eval draws a random letter for it.
"""

from collections import defaultdict
from pathlib import Path

from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer
from loguru import logger

LETTERS = "ABCDE"


def _candidates(doc):
    if doc.get("candidates") is not None:
        return list(doc["candidates"])
    return [doc[f"option{i}"] for i in range(len(LETTERS)) if doc.get(f"option{i}") not in (None, "N/A")]


def longvideobench_doc_to_visual(doc, lmms_eval_specific_kwargs):
    path = Path(lmms_eval_specific_kwargs["video_dir"]) / doc["video_path"]
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (lmms_eval_specific_kwargs.video_dir in "
                                "longvideobench_local.yaml)")
    return [str(path)]


def longvideobench_doc_to_text(doc, lmms_eval_specific_kwargs):
    kwargs = lmms_eval_specific_kwargs
    options = [f"{LETTERS[i]}. {c}" for i, c in enumerate(_candidates(doc))]
    question = "\n".join([doc["question"], *options])
    return f"{kwargs.get('pre_prompt', '')}{question}\n{kwargs.get('post_prompt', '')}"


def longvideobench_process_results(doc, results):
    letters = list(LETTERS[: len(_candidates(doc))])
    predicted = extract_mcq_answer(results[0], choices=letters)
    return {"lvb_acc": {"id": doc["id"], "duration_group": doc["duration_group"],
                        "question_category": doc["question_category"], "parsed_pred": predicted,
                        "answer": LETTERS[int(doc["correct_choice"])]}}


def longvideobench_aggregate_results(results):
    by_duration = defaultdict(list)
    for r in results:
        by_duration[r["duration_group"]].append(r["parsed_pred"] == r["answer"])
    for duration, hits in sorted(by_duration.items()):
        logger.info(f"longvideobench_val_v_local duration {duration}: {sum(hits) / len(hits):.3f} of {len(hits)}")
    return sum(r["parsed_pred"] == r["answer"] for r in results) / len(results) if results else 0.0
