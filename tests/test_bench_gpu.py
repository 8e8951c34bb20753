"""scripts/bench_gpu.py on the CPU at `--scale tiny`: the same code path as on a GPU (model built from the
configuration in code, processor-shaped inputs, `enable` + `generate`, the unmodified model, the time guard),
checked against what the configuration implies and against the unmodified model's answer."""

from __future__ import annotations

import json
import math

import pytest

from adapttoken_plugin.trace import STAGES
from fixtures.scripts import load_script

FRAMES, SIDE, BUDGET, FRAMES_PER_GROUP, LITE_GROUPS = (16, 32), 56, 12, 8, 2


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_gpu")


@pytest.fixture(scope="module")
def tiny_run(bench, tmp_path_factory):
    path = tmp_path_factory.mktemp("bench_gpu") / "out.json"
    out = bench.main(["--scale", "tiny", "--models", "7b", "--device", "cpu", "--out", str(path),
                      "--methods", "unmodified", "full", "adapttoken", "lite"])
    return out, json.loads(path.read_text())


def test_every_row_is_written_with_its_measurements(tiny_run):
    out, written = tiny_run
    assert written == json.loads(json.dumps(out))  # what main returns is what it wrote
    assert written["scale"] == "tiny" and written["models"]["7b"]["status"] == "run"
    rows = written["rows"]
    # the unmodified model runs last at each frame count: it is the one that may run out of memory
    assert [(r["frames"], r["method"]) for r in rows] == [
        (f, m) for f in FRAMES for m in ("adapttoken", "lite", "full", "unmodified")]
    for r in rows:
        assert r["status"] == "ok", r
        assert set(r["seconds_by_stage"]) == set(STAGES) and min(r["seconds_by_stage"].values()) >= 0
        assert r["seconds"] >= sum(r["seconds_by_stage"].values()) - 1e-3
        # GPU memory is measured on a CUDA device only
        assert r["peak_gib"] is r["inputs_gib"] is r["peak_over_inputs_gib"] is None
        assert len(r["answer_ids"]) > 0


def test_token_counts_and_groups_follow_from_the_configuration(tiny_run):
    """56 x 56 px frames in 14 px patches merged 2 x 2, frame pairs: 4 tokens per pair; 4 pairs per group."""
    for r in tiny_run[1]["rows"]:
        tokens, groups = r["frames"] // 2 * (SIDE // 28) ** 2, math.ceil(r["frames"] // 2 / (FRAMES_PER_GROUP // 2))
        assert r["visual_tokens"] == tokens
        if r["method"] in ("adapttoken", "lite"):
            assert r["kept_tokens"] == BUDGET and r["groups"] == groups
            assert r["groups_visited"] == (groups if r["method"] == "adapttoken" else min(LITE_GROUPS, groups))
            assert r["seconds_by_stage"]["prefill"] > 0 and r["seconds_by_stage"]["scoring"] > 0
        else:
            assert r["kept_tokens"] == tokens
        if r["method"] == "unmodified":
            assert r["seconds_by_stage"]["vision"] > 0 and r["seconds_by_stage"]["final"] > 0


def test_every_token_kept_answers_as_the_unmodified_model(tiny_run):
    rows = tiny_run[1]["rows"]
    for frames in FRAMES:
        by_method = {r["method"]: r for r in rows if r["frames"] == frames}
        full, unmodified = by_method["full"], by_method["unmodified"]
        assert full["answer_ids"] == unmodified["answer_ids"]
        assert full["first_step_top_ids"] == unmodified["first_step_top_ids"]
        assert full["first_step_top_logits"] == pytest.approx(unmodified["first_step_top_logits"], abs=1e-4)
        assert by_method["full"]["same_answer_as_unmodified"] is True
        assert by_method["unmodified"]["same_answer_as_unmodified"] is True


def test_rows_past_the_time_limit_are_skipped_and_the_json_says_so(bench, tmp_path):
    out = bench.main(["--scale", "tiny", "--models", "7b", "--device", "cpu", "--frames", "16", "--time-limit",
                      "0.001", "--out", str(tmp_path / "out.json")])
    assert [(r["method"], r["status"]) for r in out["rows"]] == [
        (m, "skipped: the time limit was reached") for m in ("adapttoken", "lite", "unmodified")]
    assert json.loads((tmp_path / "out.json").read_text())["rows"] == out["rows"]
    assert "| skipped: the time limit was reached |" in bench.table(out)


@pytest.mark.parametrize("method", ["adapttoken", "unmodified"])
def test_a_row_running_at_the_deadline_is_stopped_and_leaves_the_model_clean(bench, method):
    import torch

    import adapttoken_plugin as at

    args = bench.parse_args(["--scale", "tiny", "--device", "cpu"])
    config = bench.model_config("tiny", "7b")
    model = bench.build(config, "cpu", torch.float32)
    inputs = bench.make_inputs(config, 16, SIDE, 8, 0, "cpu", torch.float32)
    row = bench.run_row(model, inputs, {"method": method}, args, deadline=0.0, on_cuda=False)
    assert row["status"].startswith("stopped at the time limit"), row
    assert not at.is_enabled(model)
    layers = [*model.model.visual.blocks, *model.get_decoder().layers]
    assert all(not layer._forward_pre_hooks for layer in layers)


def test_a_row_that_would_not_fit_the_time_left_is_estimated_from_the_smaller_run(bench):
    config = bench.model_config("real", "7b")
    stages = dict.fromkeys(STAGES, 1.0)
    earlier = {"status": "ok", "frames": 1024, "visual_tokens": 131072, "seconds": 6.0, "seconds_by_stage": stages}

    def estimate(method):
        return bench.estimate_seconds({"method": method, "frames": 4096, "visual_tokens": 4 * 131072},
                                      {**earlier, "method": method}, config)

    assert estimate("lite") == 6.0  # the same groups and budget at any length
    assert estimate("adapttoken") == 5.0 * 4 + 1.0  # group passes x 4, the same final pass
    assert 5.0 * 4 + 4.0 < estimate("unmodified") < 5.0 * 4 + 16.0  # attention grows faster than the tokens
    assert bench.estimate_seconds({"method": "lite", "frames": 4096}, None, config) == 0.0


def test_the_real_configuration_is_the_7b_checkpoints(bench):
    """Built on the meta device: 8.29 B parameters, the Qwen2.5-VL-7B-Instruct count."""
    import torch

    config = bench.model_config("real", "7b")
    assert round(bench.weight_bytes(config, torch.bfloat16) / 2 / 1e9, 2) == 8.29
    assert config.text_config.rope_parameters["mrope_section"] == [16, 24, 24]
    assert config.vision_config.fullatt_block_indexes == [7, 15, 23, 31]


def test_bad_arguments_and_a_real_run_without_a_gpu_are_refused(bench, capsys):
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="--scale real needs a CUDA device"):
            bench.main(["--scale", "real", "--out", "/nonexistent/never-written.json"])
    for argv, message in ((["--frames", "15"], "must be even"), (["--side", "50"], "multiple of 28"),
                          (["--budget", "0"], "--budget 0: must be >= 1")):
        with pytest.raises(SystemExit):
            bench.parse_args(["--scale", "tiny", *argv])
        assert message in capsys.readouterr().err
