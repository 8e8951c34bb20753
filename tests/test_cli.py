import json

from adapttoken_plugin import SELECTORS
from adapttoken_plugin.cli import build_parser, main


def test_list_shows_selectors_and_model_classes(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in SELECTORS.names():
        assert name in out
    assert "Qwen2_5_VLForConditionalGeneration" in out


def test_every_config_field_is_a_flag():
    from dataclasses import fields

    from adapttoken_plugin import AdaptTokenConfig

    help_text = build_parser()._subparsers._group_actions[0].choices["answer"].format_help()
    for f in fields(AdaptTokenConfig):
        if f.name != "extra":
            assert f"--{f.name.replace('_', '-')}" in help_text


def test_demo_runs_end_to_end_and_writes_the_trace(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--selector", "adapttoken-lite", "--theta", "0"]) == 0
    out = capsys.readouterr().out
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert trace["kept_tokens"] == 256 and trace["selector"] == "adapttoken-lite"
    assert trace["num_frames"] == 256 and len(trace["groups"]) == 4
    assert "answer:" in out and "entropy" in out and (tmp_path / "demo.mp4").exists()


def test_bad_settings_exit_with_a_message(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--budget", "0"]) == 2
    assert "budget" in capsys.readouterr().err
    assert main(["answer", "--model", str(tmp_path), "--video", "x.mp4", "--question", "q", "--budget", "-1"]) == 2
