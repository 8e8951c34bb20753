"""Video-MME from a local copy (columns of lmms-eval/Video-MME: videoID, duration, domain, sub_category,
task_type, question_id, question, options ["A. ...", ...], answer letter).

Same prompts (the default one, llava_vid's, and the Qwen3-VL format), answer extraction and score as
lmms-eval's `videomme` task; the score is the overall accuracy in percent, with the per-duration
accuracies logged.
"""

from collections import defaultdict
from pathlib import Path

from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer
from loguru import logger

INSTRUCTION = ("Select the best answer to the following multiple-choice question based on the video and the "
               "subtitles. Respond with only the letter (A, B, C, or D) of the correct option.")
SUFFIXES = (".mp4", ".MP4", ".mkv")


def videomme_doc_to_visual(doc, lmms_eval_specific_kwargs):
    video_dir = Path(lmms_eval_specific_kwargs["video_dir"])
    for suffix in SUFFIXES:
        path = video_dir / f"{doc['videoID']}{suffix}"
        if path.is_file():
            return [str(path)]
    raise FileNotFoundError(f"no video {doc['videoID']}{{{','.join(SUFFIXES)}}} in {video_dir} "
                            "(lmms_eval_specific_kwargs.video_dir in videomme_local.yaml)")


def videomme_doc_to_text(doc, lmms_eval_specific_kwargs):
    kwargs = lmms_eval_specific_kwargs
    pre, post = kwargs.get("pre_prompt", ""), kwargs.get("post_prompt", "")
    if kwargs.get("format") == "qwen3_vl":
        return "\n".join([f"{pre}{doc['question']}", "Options:", *doc["options"], post])
    question = "\n".join([doc["question"], *doc["options"]])
    return f"{pre}{INSTRUCTION}\n{question}\n{post}"


def videomme_process_results(doc, results):
    predicted = extract_mcq_answer(results[0], choices=["A", "B", "C", "D"])
    return {"videomme_perception_score": {"question_id": doc["question_id"], "duration": doc["duration"],
                                          "pred_answer": predicted, "answer": doc["answer"],
                                          "score": float(predicted == doc["answer"])}}


def videomme_aggregate_results(results):
    by_duration = defaultdict(list)
    for r in results:
        by_duration[r["duration"]].append(r["score"])
    for duration, scores in sorted(by_duration.items()):
        logger.info(f"videomme_local {duration}: {100 * sum(scores) / len(scores):.1f}% of {len(scores)}")
    return 100 * sum(r["score"] for r in results) / len(results) if results else 0.0
