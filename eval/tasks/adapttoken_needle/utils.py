"""The needle task: one synthetic video per document (absolute path in the annotations), four colour options.

The prompt is the one the toy model was trained on (`adapttoken_plugin.pipeline.format_question`):
the question, one `X. option` line per option, then the instruction line.
"""

from pathlib import Path

from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def needle_doc_to_visual(doc):
    video = Path(doc["video"])
    if not video.is_file():
        raise FileNotFoundError(f"needle video {video} does not exist; write the data with "
                                "`python -m adapttoken_plugin.integrations.lmms_eval.needle_data`")
    return [str(video)]


def needle_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    options = [f"{LETTERS[i]}. {option}" for i, option in enumerate(doc["options"])]
    return "\n".join([doc["question"], *options, kwargs.get("post_prompt", "")])


def needle_process_results(doc, results):
    letter = extract_mcq_answer(results[0], choices=list(LETTERS[: len(doc["options"])]))
    return {"needle_acc": float(letter == doc["answer"])}
