"""scripts/probe_layer.py on every family: its per-layer needle hits equal an eager-attention reference."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from adapttoken_plugin.adapters.base import adapter_for
from fixtures.families import FAMILIES
from fixtures.scripts import load_script


@pytest.fixture(scope="module")
def probe():
    return load_script("probe_layer")


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_needle_hits_per_layer_equal_an_eager_reference(probe, name):
    family = FAMILIES[name]
    model, processor = family.model(), family.build_processor()
    trial = probe.probe_trial(model, processor, seed=3, num_frames=4 * family.frames_per_unit, size=32,
                              needle_units=1, reduce="max", position_rule="transformers")
    adapter = adapter_for(model)
    assert len(trial["hits"]) == adapter.num_layers and all(0 <= h <= trial["k"] for h in trial["hits"])
    assert trial["needle_units"] == sorted({f // family.frames_per_unit for f in trial["needle_frames"]})

    # the same video and question through an eager copy of the model, all layers' attentions at once
    from adapttoken_plugin.needle import iter_frames, make_question
    from adapttoken_plugin.pipeline import format_question

    q = make_question(3, 4 * family.frames_per_unit, needle_length=family.frames_per_unit)
    q = dataclasses.replace(q, needle_start=q.needle_start - q.needle_start % family.frames_per_unit)
    inputs = probe.video_inputs(processor, np.stack(list(iter_frames(q, side=32))),
                                format_question(q.question, q.options))
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    prompt, layout, _ = adapter.split_inputs(dict(inputs))
    columns = adapter.visual_columns(prompt, layout, torch.arange(layout.num_tokens))
    with torch.no_grad():
        attentions = eager(**inputs, output_attentions=True).attentions
    needle = layout.token_ids_of_units(torch.tensor(trial["needle_units"]))
    expected = []
    for layer in attentions:
        scores = layer[0, :, -len(prompt.suffix_ids):, columns].amax(dim=(0, 1))
        expected.append(int(torch.isin(torch.topk(scores, len(needle)).indices, needle).sum()))
    assert trial["hits"] == expected


def test_main_prints_a_table_and_writes_json(probe, tmp_path, capsys):
    import json

    result = probe.main(["--frames", "8", "--trials", "2", "--json", str(tmp_path / "probe.json")])
    written = json.loads((tmp_path / "probe.json").read_text())
    assert written["num_layers"] == len(written["layers"]) == result["num_layers"] == 4
    assert written["best_layer"] == max(written["layers"], key=lambda r: (r["recall"], -r["layer"]))["layer"]
    assert "recall" in capsys.readouterr().out


def test_the_bundled_toy_models_preset_is_the_layer_the_probe_finds_on_it(probe):
    from adapttoken_plugin.presets import PRESETS
    from adapttoken_plugin.toy import NEEDLE_MODEL_DIR, load_needle_model

    result = probe.main(["--model", str(NEEDLE_MODEL_DIR), "--frames", "128", "--trials", "16", "--needle-units", "2"])
    recall = [row["recall"] for row in result["layers"]]
    assert result["best_layer"] == PRESETS["needle-toy"].scoring_layer
    assert recall[result["best_layer"]] > recall[round(0.7 * result["num_layers"])]  # what the 0.7 rule picks
    assert adapter_for(load_needle_model()[0]).default_scoring_layer() == PRESETS["needle-toy"].scoring_layer


def test_the_tasks_models_preset_is_the_layer_the_probe_finds_on_it(probe):
    from adapttoken_plugin.presets import PRESETS
    from adapttoken_plugin.toy import TASKS_MODEL_DIR, load_tasks_model

    result = probe.main(["--model", str(TASKS_MODEL_DIR), "--frames", "128", "--size", "112", "--trials", "16",
                         "--needle-units", "2"])
    assert result["best_layer"] == PRESETS["tasks-toy"].scoring_layer
    assert adapter_for(load_tasks_model()[0]).default_scoring_layer() == PRESETS["tasks-toy"].scoring_layer
