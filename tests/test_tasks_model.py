"""The bundled tasks toy model (issue 13): every benchmark task is answerable from its evidence alone and
unanswerable without it, through the real pipeline (mp4 written, decoded, encoded, one final pass).

The oracle keeps every token of the frame pairs that hold evidence, then evenly spaced pairs up to the
budget. The same question on its minimal pair (the video drawn without the evidence events, decoys and
background unchanged) must fall to about chance: otherwise the task would be answerable from something
other than its evidence, and a strategy's accuracy would not say whether it found the evidence.
"""

import numpy as np
import pytest
import torch

from adapttoken_plugin import AdaptTokenConfig, Pipeline, Stage
from adapttoken_plugin.bench_tasks import TASKS, iter_frames, task_question_set
from adapttoken_plugin.layout import Selection
from adapttoken_plugin.needle import VIDEO_FPS
from adapttoken_plugin.pipeline import format_question
from adapttoken_plugin.selectors.base import Selector, top_up
from adapttoken_plugin.stage import Evidence, Query
from adapttoken_plugin.toy import load_tasks_model
from adapttoken_plugin.video import write_video

FRAMES = 128  # 64 frame pairs of 16 tokens: 1,024 visual tokens
BUDGET = 160  # 10 frame pairs: the evidence and some context (the oracle keeps every evidence token even when
# there are more, as for salient-order's long event)
QUESTIONS = 12  # per task


class EvidenceOracle(Selector):
    """Every token of the evidence frame pairs, then evenly spaced tokens of the others, up to the budget."""

    needs_group_pass = False

    def __init__(self, config, units):
        super().__init__(config)
        self.units = torch.tensor(units, dtype=torch.long)

    def select(self, layout, groups):
        evidence = torch.sort(layout.token_ids_of_units(self.units)).values
        return Selection(top_up(evidence, layout, self.config.budget), None)


@pytest.fixture(scope="module")
def model_and_processor():
    torch.set_num_threads(2)
    return load_tasks_model()


def answer(model, processor, q, path, evidence_units=None):
    """(letter, entropy over the four option letters) of the question on the video at `path`, keeping the
    oracle's tokens."""
    pipe = Pipeline(model, processor, AdaptTokenConfig(fps=VIDEO_FPS, max_frames=q.num_frames, selector="full"))
    prompt = pipe.prompt_parts(format_question(q.question, list(q.options)))
    with pipe.open_video(path) as session:
        layout = session.layout
        if evidence_units is None:
            wanted = set(q.evidence_frames)
            evidence_units = sorted({i // layout.frames_per_unit for i, f in enumerate(layout.frame_indices)
                                     if f in wanted})
        config = pipe.config.replace(budget=BUDGET)
        stage = Stage(model, pipe.adapter, config, warn=False)
        stage.selector = EvidenceOracle(config, evidence_units)
        query = Query(prompt, layout, session.pixels_for)
        evidence = stage.collect_evidence(query)
        result = stage.finish(query, Evidence(evidence.groups, evidence.groups, evidence.trace))
        reply = pipe.generate_answer(prompt, layout, result, q.options, max_new_tokens=4)
        inputs = pipe.adapter.model_inputs(prompt, layout, result.token_ids, result.features)
        with torch.no_grad():
            logits = model(**inputs, logits_to_keep=1).logits[0, -1, pipe.option_token_ids(4)]
    p = torch.softmax(logits.float(), -1)
    return reply.letter, float(-(p * p.clamp_min(1e-12).log()).sum()), evidence_units


@pytest.mark.parametrize("task", sorted(TASKS))
def test_oracle_answers_from_the_evidence_and_not_without_it(task, model_and_processor, tmp_path):
    model, processor = model_and_processor
    with_hits, without_hits, with_entropy, without_entropy = [], [], [], []
    for q in task_question_set(QUESTIONS, (FRAMES,), tasks=(task,), seed=7):
        shown = tmp_path / f"{q.seed}.mp4"
        hidden = tmp_path / f"{q.seed}-no-evidence.mp4"
        write_video(shown, iter_frames(q), fps=VIDEO_FPS)
        write_video(hidden, iter_frames(q, shown=set()), fps=VIDEO_FPS)
        letter, entropy, units = answer(model, processor, q, shown)
        with_hits.append(letter == q.answer_letter)
        with_entropy.append(entropy)
        letter, entropy, _ = answer(model, processor, q, hidden, evidence_units=units)  # the same tokens
        without_hits.append(letter == q.answer_letter)
        without_entropy.append(entropy)
    assert np.mean(with_hits) >= 0.9, (task, with_hits)
    # chance is 0.25; 6 or more of 12 by chance has probability 0.05
    assert np.mean(without_hits) <= 0.5, (task, without_hits)
    # the entropy AdaptToken reads: confident with the evidence, unsure without it
    assert np.median(with_entropy) < 0.5 * np.median(without_entropy), (task, with_entropy, without_entropy)
