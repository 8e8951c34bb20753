"""One config schema: every setting carries its help text and phase, and what is derived from them stays true.

Derived from the schema: the CLI flags' help, the configuration table in docs/config.md, the ablation's
evidence-cache key (settings of EVIDENCE_PHASES), the run ids (which leave `storage` and `timing` settings out),
the settings `adapttoken_llava_vid` refuses (`pipeline_only`) and the warning for a setting the selector ignores.
The behavioural test below runs real group passes: a setting labelled `selection`, `storage` or `timing` that
changes the evidence would serve stale cached evidence, so it must be labelled `group pass` (and is then in the
key).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import adapttoken_plugin as at
from adapttoken_plugin.ablation.runner import Sweep
from adapttoken_plugin.cli import build_parser
from adapttoken_plugin.config import (
    EVIDENCE_PHASES,
    PHASES,
    pipeline_only_settings,
    setting_fields,
    settings_in,
)
from adapttoken_plugin.doc_tables import TABLES, render, stale_files
from adapttoken_plugin.pipeline import Pipeline, format_question
from adapttoken_plugin.stage import IgnoredSettingWarning, Query, Stage, ignored_settings
from adapttoken_plugin.toy import toy_model, toy_processor
from adapttoken_plugin.video import write_video

REPO = Path(__file__).resolve().parents[1]
# a different valid value of each setting that is not part of the evidence
OTHER = {"selector": "attention-topk", "budget": 9, "tau": 0.5, "theta": 1.0, "min_groups": 2, "overselect": 1.5,
         "dedup": False, "dedup_window": 0, "seed": 7, "feature_store": "device", "frame_cache": "off",
         "vidcom2_temperature": 0.5, "vidcom2_channel_fraction": 1.0, "evs_threshold": 0.5,
         "fastvid_segment_threshold": 0.5, "fastvid_min_segments": 2, "fastvid_anchor_step": 1, "fastvid_knn": 2,
         "framefusion_threshold": 0.9,
         "video_cache_mib": 0, "decode_ahead": False, "sync_timing": True}


def test_every_setting_has_help_and_a_phase():
    for f in setting_fields():
        assert f.metadata["phase"] in PHASES, f.name
        assert len(f.metadata["help"]) > 20, f.name
    assert set(OTHER) == {f.name for f in setting_fields()} - set(settings_in(*EVIDENCE_PHASES))


def _key(config: at.AdaptTokenConfig) -> dict:
    fake = SimpleNamespace(backend="pyav", identity={"model": "m"})
    prompt = SimpleNamespace(prefix_ids=torch.tensor([1, 2]), suffix_ids=torch.tensor([3]))
    layer = 1 if config.scoring_layer is None else config.scoring_layer  # the runner passes the resolved layer
    return Sweep._evidence_key(fake, config, "sha", "question", prompt, [10, 11], layer, config.frames_per_group)


def test_the_evidence_key_holds_every_evidence_setting_and_no_other():
    base = at.AdaptTokenConfig()
    values = {"frames_per_group": 8, "early_layer": 1, "fps": 2.0, "max_frames": 64, "max_pixels": 4096,
              "scoring_layer": 0,
              "score_reduce": "mean", "entropy_mode": "generated", "entropy_max_new_tokens": 3,
              "entropy_top_fraction": 0.5, "position_rule": "transformers", "positions_1d": "original"}
    assert set(values) == set(settings_in(*EVIDENCE_PHASES))
    for name, value in values.items():
        assert _key(base.replace(**{name: value})) != _key(base), name
    for name, value in OTHER.items():
        assert _key(base.replace(**{name: value})) == _key(base), name


@pytest.fixture(scope="module")
def toy_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    rng = np.random.default_rng(3)
    write_video(path, (rng.integers(0, 255, (56, 56, 3), dtype=np.uint8) for _ in range(16)), fps=4.0)
    return toy_model(), toy_processor(min_pixels=56 * 56, max_pixels=56 * 56), path


def _evidence(toy_video, **settings):
    model, processor, path = toy_video
    config = at.AdaptTokenConfig(**{"fps": 4.0, "max_frames": 16, "frames_per_group": 4, "budget": 6, **settings})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IgnoredSettingWarning)
        pipe = Pipeline(model, processor, config)
        with pipe.open_video(path) as session:
            prompt = pipe.prompt_parts(format_question("Which colour?", ["red", "green", "blue", "cyan"]), session)
            return Stage(model, pipe.adapter, config).collect_evidence(
                Query(prompt, session.layout, session.pixels_for)).groups


@pytest.mark.parametrize("name", sorted(OTHER))
def test_a_setting_outside_the_evidence_phases_leaves_the_group_passes_unchanged(toy_video, name):
    reference, changed = _evidence(toy_video), _evidence(toy_video, **{name: OTHER[name]})
    assert len(reference) == len(changed) > 1
    for a, b in zip(reference, changed):
        assert a.entropy == b.entropy and torch.equal(a.scores, b.scores)
        n = min(len(a.candidate_ids), len(b.candidate_ids))  # budget / overselect: how many, never which
        assert torch.equal(a.candidate_ids[:n], b.candidate_ids[:n])
        assert torch.equal(a.candidate_features[:n].cpu(), b.candidate_features[:n].cpu())


def test_an_evidence_setting_does_change_the_group_passes(toy_video):
    """The behavioural test above can tell: a group-pass setting changes what the passes find."""
    reference, changed = _evidence(toy_video), _evidence(toy_video, score_reduce="mean")
    assert any(not torch.equal(a.scores, b.scores) for a, b in zip(reference, changed))


def test_cli_flags_carry_the_schema_help():
    answer = next(a for a in build_parser()._subparsers._group_actions[0].choices.values() if a.prog.endswith("answer"))
    text = answer.format_help()
    for f in setting_fields():
        assert f"--{f.name.replace('_', '-')}" in text
        assert " ".join(f.metadata["help"].split()[:4]) in " ".join(text.split()), f.name


def test_cli_flags_of_settings_with_fixed_values_list_them():
    """The choices come from config.py's constants (one list: validation, CLI, docs table)."""
    from adapttoken_plugin import config

    fixed = {f.name: f.metadata["choices"] for f in setting_fields() if f.metadata["choices"] is not None}
    assert fixed == {"score_reduce": config.SCORE_REDUCTIONS, "entropy_mode": config.ENTROPY_MODES,
                     "position_rule": config.POSITION_RULES, "positions_1d": config.POSITIONS_1D,
                     "feature_store": config.FEATURE_STORES, "frame_cache": config.FRAME_CACHES}
    answer = next(a for a in build_parser()._subparsers._group_actions[0].choices.values() if a.prog.endswith("answer"))
    text = answer.format_help()
    for name, choices in fixed.items():
        assert f"--{name.replace('_', '-')} {{{','.join(choices)}}}" in text, name
        with pytest.raises(at.ConfigError, match=name):
            at.AdaptTokenConfig(**{name: "nope"})
    assert all(f"`{c}`" in config.settings_table() for c in config.FRAME_CACHES)


def test_llava_vid_refuses_the_pipeline_only_settings():
    from adapttoken_plugin.integrations.lmms_eval.llava_vid import split_model_args

    assert set(pipeline_only_settings()) == {"fps", "max_frames", "max_pixels", "frame_cache", "video_cache_mib",
                                             "decode_ahead"}
    for name in pipeline_only_settings():
        with pytest.raises(at.ConfigError, match=f"adapttoken_{name} has no effect with adapttoken_llava_vid"):
            split_model_args({f"adapttoken_{name}": "1", "pretrained": "x"})
    config, package, rest = split_model_args({"adapttoken_budget": "64", "pretrained": "x"})
    assert (config.budget, package, rest) == (64, "llava", {"pretrained": "x"})
    for name in ("rope_scaling", "rope_factor", "rope_original_max_position_embeddings"):
        with pytest.raises(at.ConfigError, match=f"{name}: the YaRN model arguments"):
            split_model_args({name: "4", "pretrained": "x"})


def test_a_setting_the_selector_does_not_read_is_warned_about():
    assert ignored_settings(at.AdaptTokenConfig(selector="adapttoken", theta=0.5)) == ["theta"]
    assert ignored_settings(at.AdaptTokenConfig(selector="adapttoken-lite", theta=0.5)) == []
    assert ignored_settings(at.AdaptTokenConfig(selector="uniform", tau=0.5, scoring_layer=1)) == ["scoring_layer",
                                                                                                 "tau"]
    assert ignored_settings(at.AdaptTokenConfig(selector="uniform", fps=2.0, feature_store="device")) == []
    from fixtures.tiny import qwen2_5_vl

    model = qwen2_5_vl()
    with pytest.warns(IgnoredSettingWarning, match="theta=0.5 has no effect with selector 'adapttoken'"):
        at.enable(model, at.AdaptTokenConfig(selector="adapttoken", theta=0.5, scoring_layer=0))
    at.disable(model)


def test_the_generated_tables_in_the_docs_are_current():
    assert stale_files(REPO) == [], "run: python scripts/gen_docs.py"
    for name, (make, files) in TABLES.items():  # and the check can tell a stale copy
        text = (REPO / files[0]).read_text()
        assert render(text, name, make() + "\n| stale row |") != text
