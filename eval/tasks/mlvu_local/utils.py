"""MLVU dev from a local copy (fields: video_name, question with its options in the text, answer letter,
task_type).

Same prompt and score as lmms-eval's `mlvu_dev`: M-Avg, the mean over task types of each type's
accuracy, in percent. Here the mean runs over the task types present in the evaluated documents
(lmms-eval always divides by its seven dev types, counting an absent one as 0); on the full dev set
the two agree.
"""

from collections import defaultdict
from pathlib import Path

from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer
from loguru import logger


def mlvu_doc_to_visual(doc, lmms_eval_specific_kwargs):
    path = Path(lmms_eval_specific_kwargs["video_dir"]) / doc["video_name"]
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (lmms_eval_specific_kwargs.video_dir in mlvu_local.yaml)")
    return [str(path)]


def mlvu_doc_to_text(doc, lmms_eval_specific_kwargs):
    kwargs = lmms_eval_specific_kwargs
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}{kwargs.get('post_prompt', '')}"


def mlvu_process_results(doc, results):
    predicted = extract_mcq_answer(results[0], choices=["A", "B", "C", "D"])
    return {"mlvu_m_avg": {"task_type": doc["task_type"], "pred_answer": predicted, "answer": doc["answer"]}}


def mlvu_aggregate_results(results):
    by_type = defaultdict(list)
    for r in results:
        by_type[r["task_type"]].append(r["pred_answer"] == r["answer"])
    accuracies = {t: 100 * sum(hits) / len(hits) for t, hits in sorted(by_type.items())}
    for task_type, accuracy in accuracies.items():
        logger.info(f"mlvu_dev_local {task_type}: {accuracy:.1f}% of {len(by_type[task_type])}")
    return sum(accuracies.values()) / len(accuracies) if accuracies else 0.0
