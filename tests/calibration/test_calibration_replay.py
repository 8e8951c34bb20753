"""Calibration through the bundled trained toy model: what the replay reports is what real Lite runs do.

Eight 128-frame needle questions, 16 frames per group (8 groups of 8 frame pairs), a budget of 2 tokens: small
enough that stopping at the first group loses questions, so the replayed answers differ from theta to theta.
"""

import pytest
import torch

from adapttoken_plugin import AdaptTokenConfig, CalibrationError, ConfigError, OptionsRequiredError, Pipeline
from adapttoken_plugin.ablation import needle_items
from adapttoken_plugin.calibration import calibrate_questions, replay_questions
from adapttoken_plugin.calibration.replay import kept_sha256
from adapttoken_plugin.toy import load_needle_model

CONFIG = AdaptTokenConfig(selector="adapttoken-lite", frames_per_group=16, budget=2)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained():
    return load_needle_model()


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    return needle_items(8, (128,), tmp_path_factory.mktemp("videos"), seed=5)


@pytest.fixture(scope="module")
def replayed(trained, items):
    return replay_questions(*trained, items, CONFIG)


def _real_runs(trained, items, config):
    model, processor = trained
    return [Pipeline(model, processor, config.replace(**item.settings)).answer(item.video, item.question, item.options,
                                                                               max_new_tokens=4) for item in items]


def test_the_theta_chosen_with_max_loss_zero_gives_the_reported_accuracy_in_real_lite_runs(trained, items, replayed):
    result = calibrate_questions(replayed, CONFIG.min_groups, max_loss=0)
    assert result.theta is not None and result.skipped > 0
    assert result.accuracy == result.reference_accuracy
    # the table holds thetas at which Lite loses questions: the check below can tell answers apart
    assert min(row.accuracy for row in result.table) < result.accuracy
    reference = _real_runs(trained, items, CONFIG.replace(selector="adapttoken"))
    assert sum(a.letter == i.answer for a, i in zip(reference, items)) / len(items) == result.reference_accuracy
    last = result.table[-1]
    assert last.accuracy < result.accuracy
    for row in (next(r for r in result.table if r.theta == result.theta), last):
        runs = _real_runs(trained, items, CONFIG.replace(theta=row.theta))
        assert sum(a.letter == i.answer for a, i in zip(runs, items)) / len(items) == row.accuracy, row
        visited = [a.trace.groups_visited for a in runs]
        assert sum(visited) / len(items) == row.groups_visited, row
        assert 1 - sum(visited) / sum(len(a.trace.groups) for a in runs) == row.skipped, row
        for answer, question in zip(runs, replayed):
            # the entropies Lite saw are the ones recorded; it kept the tokens and gave the answer the replay did
            seen = [g.entropy for g in answer.trace.groups if g.visited]
            assert seen == question.entropies[:len(seen)]
            kept = kept_sha256(torch.tensor(answer.trace.kept_token_ids))
            assert (kept, answer.letter) == (question.kept_sha256[len(seen)], question.letters[len(seen)])


def test_skip_rule_on_replayed_questions(replayed):
    result = calibrate_questions(replayed, CONFIG.min_groups, target_skip=0.5)
    assert result.rule == "skip" and result.skipped >= 0.5
    assert all(len(q.entropies) == 8 and len(q.seconds) == 8 for q in replayed)


def test_bad_calibration_inputs_are_refused_before_any_group_pass(trained, items):
    model, processor = trained
    with pytest.raises(ConfigError, match="adapttoken-lite"):
        replay_questions(model, processor, items, CONFIG.replace(selector="adapttoken"))
    with pytest.raises(CalibrationError, match="no calibration questions"):
        replay_questions(model, processor, [], CONFIG)
    from dataclasses import replace

    open_question = replace(items[0], options=())
    with pytest.raises(OptionsRequiredError, match="has no options"):
        replay_questions(model, processor, [open_question], CONFIG.replace(entropy_mode="options"), answers=False)
    with pytest.raises(CalibrationError, match="has no options"):
        replay_questions(model, processor, [items[1], open_question], CONFIG)
    # entropies alone need no options (first-token entropy): the skip rule works on open questions
    (question,) = replay_questions(model, processor, [open_question], CONFIG, answers=False)
    assert len(question.entropies) == 8 and question.letters == {}
    result = calibrate_questions([question], CONFIG.min_groups, target_skip=0.1)
    assert result.accuracy is None and result.skipped >= 0.1
    with pytest.raises(CalibrationError, match="needs the replayed answers"):
        calibrate_questions([question], CONFIG.min_groups, max_loss=0)
