"""Calibration questions through a model: every group's entropy, and Lite's answer at every stop it can make.

Per question, AdaptToken's group passes run once over every group (`Stage.collect_evidence`). Lite's stop
rule is then replayed on that evidence (`Stage.replay`, with each theta at which the question's stop
moves: `sweep.stop_points`), and each distinct stop is finished as Lite would finish it (`Stage.finish`:
the budget over the groups seen, topped up from the others) and answered; AdaptToken over every group is
answered once as the reference. No group pass runs twice, as in the ablation.

    questions = replay_questions(model, processor, items, AdaptTokenConfig(selector="adapttoken-lite"))
    calibrate([q.entropies for q in questions], min_groups=1, target_skip=0.5)
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..ablation.datasets import Item
from ..config import AdaptTokenConfig
from ..errors import CalibrationError, ConfigError, OptionsRequiredError
from ..pipeline import Pipeline, format_question
from ..stage import Evidence, IgnoredSettingWarning, Query, Stage
from .sweep import Calibration, calibrate, stop_points

LITE = "adapttoken-lite"


@dataclass
class QuestionReplay:
    """One calibration question as Lite sees it.

    Attributes:
        item_id: the question's id.
        entropies: (G,) every group's answer entropy in visiting order (nats).
        seconds: (G,) measured seconds of each group pass (decode, vision, prefill, scoring).
        letters: {groups visited: Lite's answer letter (None: the reply named no option)}, for every stop some
            theta gives, and G; empty when answers were not replayed.
        kept_sha256: {groups visited: a hash of the kept token ids (`kept_sha256`)}, as `letters`: a real Lite run
            that visits that many groups keeps exactly these tokens.
        reference_letter: AdaptToken's answer over every group (None when answers were not replayed).
        answer: the correct letter.
    """

    item_id: str
    entropies: list[float]
    seconds: list[float]
    letters: dict[int, str | None]
    kept_sha256: dict[int, str]
    reference_letter: str | None
    answer: str

    @property
    def correct(self) -> dict[int, bool]:
        """{groups visited: whether Lite's answer is correct}."""
        return {n: letter == self.answer for n, letter in self.letters.items()}

    @property
    def reference_correct(self) -> bool:
        return self.reference_letter == self.answer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_lite_config(config: AdaptTokenConfig) -> None:
    """Raise ConfigError unless `config` is Lite's: calibration chooses Lite's theta."""
    if config.selector != LITE:
        raise ConfigError(f"selector={config.selector!r}: calibration chooses the theta of {LITE!r}, the only "
                          "selector with an early stop; drop the selector setting or set it to adapttoken-lite")


def check_items(items: Sequence[Item], config: AdaptTokenConfig, answers: bool) -> None:
    """Raise CalibrationError for no items, or for an item without options when answers are scored;
    OptionsRequiredError for one without options under entropy_mode='options'."""
    if not items:
        raise CalibrationError("no calibration questions: give at least one")
    for item in items:
        if item.options:
            continue
        if config.entropy_mode == "options":
            raise OptionsRequiredError(f"calibration question {item.item_id!r} has no options, and "
                                       "entropy_mode='options' needs them: give its options, or use "
                                       "entropy_mode='first_token'")
        if answers:
            raise CalibrationError(f"calibration question {item.item_id!r} has no options: the accuracy is scored "
                                   "by option letter; give its options (and its answer letter)")


def replay_questions(model: Any, processor: Any, items: Sequence[Item], config: AdaptTokenConfig,
                     answers: bool = True, max_new_tokens: int = 4, backend: str = "auto",
                     on_question: Callable[[QuestionReplay], None] | None = None) -> list[QuestionReplay]:
    """Every item's group entropies, and with `answers` Lite's answers at each of its stops and AdaptToken's.

    Args:
        config: Lite's settings (selector adapttoken-lite; theta is not read). An item's own settings (the
            needle set's fps and max_frames) hold over it, as in the ablation.
        answers: replay the answers (one final pass per distinct stop of each question, plus AdaptToken's);
            without them only the group passes run.
    Raises:
        ConfigError: a selector other than adapttoken-lite.
        CalibrationError / OptionsRequiredError: see `check_items` (all before any group pass).
    """
    check_lite_config(config)
    check_items(items, config, answers)
    out = []
    for item in items:
        question = _replay_one(model, processor, item, config.replace(**item.settings), answers, max_new_tokens,
                               backend)
        out.append(question)
        if on_question is not None:
            on_question(question)
    return out


def _replay_one(model: Any, processor: Any, item: Item, config: AdaptTokenConfig, answers: bool,
                max_new_tokens: int, backend: str) -> QuestionReplay:
    with warnings.catch_warnings():  # Lite's theta and min_groups are read by the replay, not by AdaptToken's passes
        warnings.simplefilter("ignore", IgnoredSettingWarning)
        pipe = Pipeline(model, processor, config.replace(selector="adapttoken"), backend)
    options = list(item.options) or None
    option_ids = pipe.option_token_ids(len(options)) if options else None
    with pipe.open_video(item.video) as session:
        prompt = pipe.prompt_parts(format_question(item.question, options), session)
        query = Query(prompt, session.layout, session.pixels_for, option_ids)
        evidence = pipe.stage.collect_evidence(query)  # every group: AdaptToken never stops early
        groups = evidence.groups
        entropies = [float(g.entropy) for g in groups]
        seconds = [sum(g.seconds.values()) for g in groups]
        letters: dict[int, str | None] = {}
        kept: dict[int, str] = {}
        reference = None
        if answers:
            def answer(stage: Stage, seen: Evidence) -> tuple[str | None, str]:
                result = stage.finish(query, seen)
                reply = pipe.generate_answer(prompt, session.layout, result, options, max_new_tokens)
                return reply.letter, kept_sha256(result.token_ids)

            reference = answer(pipe.stage, evidence)[0]
            lite = Stage(model, pipe.adapter, config, warn=False)
            letters[len(groups)], kept[len(groups)] = answer(lite, Evidence(groups, groups, evidence.trace))
            for theta, _ in stop_points(entropies, config.min_groups):
                stop = Stage(model, pipe.adapter, config.replace(theta=theta), warn=False).replay(evidence)
                letters[len(stop.visited)], kept[len(stop.visited)] = answer(lite, stop)
    return QuestionReplay(item.item_id, entropies, seconds, letters, kept, reference, item.answer)


def kept_sha256(token_ids: torch.Tensor) -> str:
    """A short hash of kept token ids (K,) int64, as the ablation's `kept_sha256`."""
    return hashlib.sha256(token_ids.to(torch.int64).numpy().tobytes()).hexdigest()[:16]


def calibrate_questions(questions: Sequence[QuestionReplay], min_groups: int, target_skip: float | None = None,
                        max_loss: float | None = None) -> Calibration:
    """`calibrate` on replayed questions (answers, when they were replayed, fill the accuracy column)."""
    answered = all(q.letters for q in questions) and bool(questions)
    return calibrate([q.entropies for q in questions], min_groups, target_skip=target_skip, max_loss=max_loss,
                     correct=[q.correct for q in questions] if answered else None,
                     reference=[q.reference_correct for q in questions] if answered else None,
                     seconds=[q.seconds for q in questions])

