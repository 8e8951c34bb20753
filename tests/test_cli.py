import json
from pathlib import Path

import pytest

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
    # the table says why a group's tokens kept may differ from its budget
    assert "De-duplication works across groups" in " ".join(out.split())
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


@pytest.fixture(scope="module")
def needle_video(tmp_path_factory):
    from adapttoken_plugin.needle import make_question, write_video_file

    question = make_question(seed=3, num_frames=64)
    return question, write_video_file(question, tmp_path_factory.mktemp("needle") / "needle.mp4")


def _answer_args(video, *extra):
    from adapttoken_plugin.toy import NEEDLE_MODEL_DIR

    return ["answer", "--model", str(NEEDLE_MODEL_DIR), "--video", str(video), "--question", "Which colour?",
            "--options", "red", "green", "blue", "yellow", "--fps", "4", "--max-frames", "64", "--budget", "16",
            "--frames-per-group", "32", "--quiet", "--max-new-tokens", "2", *extra]


@pytest.mark.parametrize("extra, message", [
    (["--video", "{tmp}/none.mp4"], "no such file"),
    (["--trace", "{tmp}/file/t.json"], "--trace"),  # a file where its folder would be
    (["--report", "{tmp}"], "is a folder"),
    (["--device", "toaster"], "not a torch device"),
    (["--device", "cuda:99"], "cuda"),
    (["--backend", "pyav", "--hide", "av"], "pip install 'adapttoken[video]'"),
    (["--tp", "2", "--hide", "deepspeed"], "pip install 'adapttoken[deepspeed]'"),
    (["--tp", "2", "--budget", "0"], "budget=0"),  # once, before any rank starts
])
def test_answer_checks_its_inputs_before_the_model_loads(needle_video, tmp_path, monkeypatch, capsys, extra,
                                                         message):
    """A missing video was reported after the model had loaded; a --trace or --report that cannot be written
    failed with a traceback after the answer; devices, extras and settings failed per rank or deep in torch."""
    import sys

    from adapttoken_plugin import cli, launch

    (tmp_path / "file").write_text("")
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    if "--hide" in extra:  # a package that is not installed
        at = extra.index("--hide")
        monkeypatch.setitem(sys.modules, extra[at + 1], None)
        extra = extra[:at] + extra[at + 2:]
    monkeypatch.setattr(cli, "load_model", lambda *a: pytest.fail("the model must not load"))
    monkeypatch.setattr(launch, "relaunch", lambda *a: pytest.fail("no rank must start"))
    assert main(_answer_args(needle_video[1], *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("flag", [["--tp", "0"], ["--dtype", "float17"], ["--max-new-tokens", "0"],
                                  ["--rank-timeout", "0"], ["--score-reduce", "median"], ["--frame-cache", "ram"]])
def test_flags_of_the_wrong_form_are_usage_errors(needle_video, capsys, flag):
    """`--tp 0` used to end in KeyError 'WORLD_SIZE', `--dtype float17` in torch's AttributeError."""
    with pytest.raises(SystemExit) as exit_:
        main(_answer_args(needle_video[1], *flag))
    assert exit_.value.code == 2 and flag[0] in capsys.readouterr().err


def test_output_folders_are_created_and_a_failed_write_keeps_the_result(needle_video, tmp_path, monkeypatch,
                                                                         capsys):
    """`--trace nodir/t.json` lost the computed trace to a traceback; now the folder is made, and a write that
    still fails (a full disk) saves the trace elsewhere and says where."""
    from adapttoken_plugin.trace import Trace

    trace = tmp_path / "nodir" / "deeper" / "t.json"
    assert main(_answer_args(needle_video[1], "--trace", str(trace))) == 0
    assert json.loads(trace.read_text())["kept_tokens"] == 16
    capsys.readouterr()

    save = Trace.save

    def disk_full(self, path):
        if Path(path).parent == tmp_path:
            raise OSError(28, "No space left on device")
        save(self, path)

    monkeypatch.setattr(Trace, "save", disk_full)
    assert main(_answer_args(needle_video[1], "--trace", str(tmp_path / "t.json"))) == 1
    captured = capsys.readouterr()
    assert "answer:" in captured.out and "No space left on device" in captured.err
    saved = captured.err.split("the trace was saved to ")[1].split(" instead")[0]
    assert json.loads(Path(saved).read_text())["kept_tokens"] == 16
    Path(saved).unlink()


def test_demo_out_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["demo", "--out", str(tmp_path / "file"), "--quiet"]) == 2
    assert "--out" in capsys.readouterr().err
