"""`adapttoken calibrate`: what it prints and writes, and the inputs it refuses before the model loads."""

import json
import math
import re

import pytest
import torch

from adapttoken_plugin import AdaptTokenConfig
from adapttoken_plugin.calibration import command
from adapttoken_plugin.cli import main


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def skipped_by_hand(entropies, theta):
    """Share of all groups Lite (min_groups 1) skips at theta: it stops at the first group with entropy <= theta."""
    visited = [next((n for n, h in enumerate(e, 1) if h <= theta), len(e)) for e in entropies]
    return 1 - sum(visited) / sum(len(e) for e in entropies)


def test_calibrate_prints_the_table_and_the_settings_and_writes_json(tmp_path, capsys, one_thread):
    out = tmp_path / "result" / "calibration.json"
    code = main(["calibrate", "--target-skip", "0.5", "--questions", "3", "--lengths", "64", "--videos",
                 str(tmp_path / "videos"), "--set", "frames_per_group=16", "--out", str(out), "--quiet",
                 "--threads", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    saved = json.loads(out.read_text())
    theta = saved["calibration"]["theta"]
    entropies = [q["entropies"] for q in saved["questions"]]
    assert [len(e) for e in entropies] == [4, 4, 4]  # 64 frames, 16 per group
    # the smallest theta that skips half the groups, by Lite's rule worked out here
    assert skipped_by_hand(entropies, theta) >= 0.5 > skipped_by_hand(entropies, math.nextafter(theta, -math.inf))
    assert saved["calibration"]["skipped"] == skipped_by_hand(entropies, theta)
    assert saved["calibration"]["settings"] == {"selector": "adapttoken-lite", "theta": theta, "min_groups": 1}
    assert saved["config"]["frames_per_group"] == 16 and saved["config"]["selector"] == "adapttoken-lite"
    # the printed settings give back the exact theta (a rounded one could fall below the group it stops at)
    lmms_eval = re.search(r"lmms-eval: (\S+)", printed).group(1)
    parsed = AdaptTokenConfig.from_dict(dict(pair.split("=") for pair in lmms_eval.split(",")))
    assert (parsed.selector, parsed.theta, parsed.min_groups) == ("adapttoken-lite", theta, 1)
    assert f"theta={theta!r}" in printed and "| chosen |" in printed
    assert "- |  |" in printed  # no accuracy column without answers (--max-loss or --with-accuracy)
    assert saved["questions"][0]["letters"] == {}


@pytest.mark.parametrize("args, message", [
    (["--target-skip", "1.5"], "target skip share 1.5 is out of range"),
    (["--target-skip", "0"], "target skip share 0.0 is out of range"),
    (["--max-loss", "-0.1"], "max_loss=-0.1 is out of range"),
    (["--max-loss", "0", "--set", "selector=adapttoken"], "selector='adapttoken': calibration chooses the theta"),
    (["--max-loss", "0", "--set", "theta=0.3"], "theta is what calibrate chooses"),
    (["--max-loss", "0", "--set", "budget=0"], "budget"),
    (["--max-loss", "0", "--device", "cuda:99"], "cuda:99"),
    (["--max-loss", "0", "--dataset", "missing.jsonl"], "does not exist"),
])
def test_bad_inputs_exit_2_before_the_model_loads(tmp_path, monkeypatch, capsys, args, message):
    def no_model(*_):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(command, "load_model", no_model)
    monkeypatch.chdir(tmp_path)
    assert main(["calibrate", *args, "--videos", str(tmp_path / "v"), "--out", str(tmp_path / "c.json")]) == 2
    assert message in capsys.readouterr().err


def test_an_empty_annotation_file_and_a_rule_count_other_than_one_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(command, "load_model", lambda *_: pytest.fail("the model was loaded"))
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert main(["calibrate", "--max-loss", "0", "--dataset", str(empty)]) == 2
    assert "non-empty list" in capsys.readouterr().err
    for rules in ([], ["--max-loss", "0", "--target-skip", "0.5"]):
        with pytest.raises(SystemExit) as exit_:
            main(["calibrate", *rules])
        assert exit_.value.code == 2
        assert "--target-skip" in capsys.readouterr().err
