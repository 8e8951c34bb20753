"""Choosing AdaptToken-Lite's `theta` for a model from calibration questions (`adapttoken calibrate`).

Lite stops after the first group whose answer entropy is <= theta nats, but entropies are on each model's
own scale (vocabulary, training, entropy mode), so a theta chosen for one model does not carry over to
another. Calibration runs AdaptToken's group passes over every group of a few questions once, replays
Lite's stop rule at every theta where it changes, and picks theta by one of two rules:

    questions = replay_questions(model, processor, items, AdaptTokenConfig(selector="adapttoken-lite"))
    result = calibrate_questions(questions, min_groups=1, target_skip=0.5)   # or max_loss=0.02
    result.theta, result.skipped, result.accuracy, result.table

`sweep.py` holds the exact step function (pure Python), `replay.py` the model side, `command.py` the CLI.
"""

from .replay import QuestionReplay, calibrate_questions, replay_questions
from .sweep import Calibration, ThetaRow, calibrate, choose_by_accuracy, choose_by_skip, stop_points, theta_table

__all__ = ["Calibration", "QuestionReplay", "ThetaRow", "calibrate", "calibrate_questions", "choose_by_accuracy",
           "choose_by_skip", "replay_questions", "stop_points", "theta_table"]
