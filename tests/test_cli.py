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


def test_demo_runs_end_to_end_and_writes_trace_and_report(tmp_path, capsys):
    from adapttoken_plugin.demo import demo_question

    assert main(["demo", "--out", str(tmp_path), "--quiet", "--selector", "adapttoken-lite", "--theta", "0"]) == 0
    out = capsys.readouterr().out
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert trace["kept_tokens"] == 128 and trace["selector"] == "adapttoken-lite"
    assert trace["num_frames"] == 1024 and len(trace["groups"]) == 16
    assert trace["groups_visited"] == 16  # theta 0: no group is that confident, so Lite visits all
    assert "answer:" in out and "entropy" in out and any(tmp_path.glob("needle_*.mp4"))
    assert f"expected answer: {demo_question().answer_letter}" in out
    page = (tmp_path / "report.html").read_text()
    kept_units = {t // trace["tokens_per_unit"] for t in trace["kept_token_ids"]}
    figures = min(64, len(kept_units))
    assert page.count("<figure>") == figures == page.count("data:image/png;base64,")
    assert figures <= page.count("class='tok'") <= trace["kept_tokens"]


def test_bad_settings_exit_with_a_message(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--budget", "0"]) == 2
    assert "budget" in capsys.readouterr().err
    assert main(["answer", "--model", str(tmp_path), "--video", "x.mp4", "--question", "q", "--budget", "-1"]) == 2
