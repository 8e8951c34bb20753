"""Hooks of the local `tp_probe` lmms-eval task."""


def doc_to_visual(doc):
    return []


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return doc["question"]


def process_results(doc, results):
    return {"acc": float(results[0].strip() == doc["answer"])}
