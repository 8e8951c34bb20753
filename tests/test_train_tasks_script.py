"""scripts/train_tasks_model.py's batches: minimal pairs with the task's answer distribution, and the count
curriculum (examples show at most `max_flashes` of their flashes). The training run itself is a recipe,
not a test."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from adapttoken_plugin.bench_tasks.base import FRAME_SIDE
from adapttoken_plugin.toy import toy_model, toy_processor
from fixtures.scripts import load_script


@pytest.fixture(scope="module")
def batcher():
    module = load_script("train_tasks_model")
    torch.set_num_threads(2)
    model = toy_model(seed=0, num_layers=1, hidden_size=32)
    processor = toy_processor(min_pixels=FRAME_SIDE * FRAME_SIDE, max_pixels=FRAME_SIDE * FRAME_SIDE)
    return module.TaskBatcher(model, processor, seed=3, max_units=14)


def count_targets(batcher, batches: int) -> np.ndarray:
    """The (examples, 4) targets of `batches` count batches of 8 examples (4 minimal pairs)."""
    return np.concatenate([batcher.batch(8, task="count")["targets"].numpy() for _ in range(batches)])


def test_count_batches_are_minimal_pairs_of_a_count_and_no_answer(batcher):
    batcher.max_flashes = 4
    batch = batcher.batch(8, task="count")
    targets, has = batch["targets"].numpy(), batch["has_needle"].numpy()
    assert has.tolist() == [True, False] * 4  # each example with its flashes, then the same frames without
    assert np.allclose(targets[~has], 0.25)
    assert np.allclose(targets[has].max(-1), 1.0)


def test_count_curriculum_caps_the_flashes_shown(batcher):
    batcher.max_flashes = 1
    capped = count_targets(batcher, 4)
    shown = capped[capped.max(-1) == 1.0]
    assert len(shown) == 16 and (shown.argmax(-1) == 0).all()  # every example with flashes shows one: "1"
    batcher.max_flashes = 4
    free = count_targets(batcher, 4)
    # 16 questions of 1-4 flashes (uniform), most shown whole: with no cap, counts above one appear
    assert (free[free.max(-1) == 1.0].argmax(-1) > 0).any()


def test_count_batches_can_be_sparse_and_short(batcher):
    batcher.max_flashes, batcher.count_sparse, batcher.count_min_keep = 4, 1.0, 4
    try:
        batches = [batcher.batch(2, task="count") for _ in range(20)]
        assert {b["kind"] for b in batches} == {"sparse"}
        shortest = min(len(f) for b in batches for f in b["features"])
        assert shortest < 8 * 16  # below the 8 frame pairs' worth of tokens that the other tasks keep at least
        assert {b["kind"] for b in (batcher.batch(4, task="needle") for _ in range(12))} == {"sparse", "group"}
    finally:
        batcher.count_sparse, batcher.count_min_keep = 0.4, 8


def test_the_count_stages_are_runs_from_the_weights_before(tmp_path, monkeypatch):
    """One command (`--count-stages N1 N2`) makes the same model as the mix alone, then one run with `--init` on its
    output per count stage, with that stage's settings: what the shipped model's training log says was done."""
    from safetensors.torch import load_file

    module = load_script("train_tasks_model")
    tiny = ["--hidden", "32", "--layers", "1", "--batch", "4", "--max-units", "4", "--threads", "1"]

    def run(*argv: str) -> dict:
        monkeypatch.setattr("sys.argv", ["train_tasks_model.py", *tiny, *argv])
        module.main()
        return load_file(Path(argv[argv.index("--out") + 1]) / "model.safetensors")

    one = run("--steps", "2", "--count-stages", "2", "1", "--out", str(tmp_path / "one"))
    before = run("--steps", "2", "--count-stages", "--out", str(tmp_path / "mix"))
    for i, stage in enumerate(module.COUNT_STAGES):
        after = run("--init", str(tmp_path / ("mix" if i == 0 else f"stage{i}")),
                    "--out", str(tmp_path / f"stage{i + 1}"), "--steps", str(2 - i),
                    "--lr", str(stage["lr"]), "--curriculum", str(stage["curriculum"]),
                    "--count-curriculum", str(stage["count_curriculum"]), "--count-sparse", str(stage["count_sparse"]),
                    "--count-min-keep", str(stage["count_min_keep"]), "--weights", *stage["weights"])
        assert any(not torch.equal(after[k], before[k]) for k in after)  # each stage trained
        before = after
    assert one.keys() == after.keys()
    assert all(torch.equal(one[k], after[k]) for k in one)
    log = json.loads((tmp_path / "one" / "training_log.json").read_text())
    assert [log["stage_1"]["args"]["lr"], log["stage_2"]["args"]["lr"], log["args"]["lr"]] == [
        7e-4, *(stage["lr"] for stage in module.COUNT_STAGES)]
    assert log["args"]["steps"] == 1 and "stage_1" not in log["stage_2"]


def test_the_default_command_runs_the_bundled_model_s_stages(monkeypatch):
    """From scratch the command makes the bundled model (the mix, then the count stages); with --init, or with
    `--count-stages` and no steps, only the one stage asked for."""
    from adapttoken_plugin.toy import TASKS_MODEL_DIR

    module = load_script("train_tasks_model")
    steps = []
    monkeypatch.setattr(module, "train_stage", lambda model, processor, args, weights, log_extra=None:
                        steps.append((args.steps, args.lr)) or {"args": vars(args)})
    for argv, expected in [([], [(2000, 7e-4), (2000, 5e-4), (1500, 2e-4)]),
                           (["--count-stages"], [(2000, 7e-4)]),
                           (["--count-stages", "10"], [(2000, 7e-4), (10, 5e-4)]),
                           (["--init", str(TASKS_MODEL_DIR), "--steps", "5"], [(5, 7e-4)])]:
        steps.clear()
        monkeypatch.setattr("sys.argv", ["train_tasks_model.py", *argv])
        module.main()
        assert steps == expected, argv


def test_evaluate_needs_a_model_to_evaluate(monkeypatch, capsys):
    module = load_script("train_tasks_model")
    monkeypatch.setattr("sys.argv", ["train_tasks_model.py", "--evaluate", "1"])
    with pytest.raises(SystemExit):
        module.main()
    assert "--evaluate needs --init MODEL_DIR" in capsys.readouterr().err
