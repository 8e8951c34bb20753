"""`adapttoken answer --tp 2`: the launcher starts 2 ranks under torchrun; the answer and the kept tokens
equal the single-process command's, and only rank 0 reports and writes the trace. Then, in one process,
how `adapttoken answer|lmms-eval --tp N` and the `python -m adapttoken_plugin.launch` alias reach the
launcher (which ranks get started with which command line; what a rank runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapttoken_plugin import cli, launch
from adapttoken_plugin.cli import main
from adapttoken_plugin.errors import ConfigError
from adapttoken_plugin.integrations.lmms_eval import tensor_parallel
from adapttoken_plugin.launch import __main__ as launch_alias
from adapttoken_plugin.needle import make_question, write_video_file
from adapttoken_plugin.toy import NEEDLE_MODEL_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_answer_on_two_ranks_equals_one_process(tmp_path, capsys):
    question = make_question(seed=3, num_frames=128)
    video = write_video_file(question, tmp_path / "needle.mp4")
    args = ["answer", "--model", str(NEEDLE_MODEL_DIR), "--video", str(video), "--question", question.question,
            "--options", *question.options, "--budget", "16", "--frames-per-group", "32", "--fps", "4",
            "--max-frames", "128", "--quiet", "--max-new-tokens", "4"]
    assert main([*args, "--trace", str(tmp_path / "one.json")]) == 0
    single_out = capsys.readouterr().out
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([sys.executable, "-m", "adapttoken_plugin.cli", *args, "--tp", "2", "--trace",
                           str(tmp_path / "tp.json")], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    one, tp = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("one", "tp"))
    assert len(one["kept_token_ids"]) == 16 and one["num_frames"] == 128
    assert tp["kept_token_ids"] == one["kept_token_ids"]
    for a, b in zip(tp["groups"], one["groups"]):
        assert abs(a["entropy"] - b["entropy"]) < 1e-5 and a["budget"] == b["budget"]
    answer_line = [line for line in single_out.splitlines() if line.startswith("answer:")]
    assert len(answer_line) == 1
    assert [line for line in done.stdout.splitlines() if line.startswith("answer:")] == answer_line  # rank 0 only



def _ranks_of(parent, psutil, count: int = 2, timeout: float = 120.0) -> list:
    """Every process below `parent` once `count` ranks (processes running the CLI module under torchrun) are up."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        below = parent.children(recursive=True)
        ranks = [p for p in below if _is_rank(p, psutil)]
        if len(ranks) >= count:
            return below
        time.sleep(0.2)
    raise AssertionError(f"{count} ranks did not start within {timeout} s")


def _is_rank(process, psutil) -> bool:
    try:
        cmd = process.cmdline()
    except psutil.Error:
        return False
    return "adapttoken_plugin.cli" in cmd and "torch.distributed.run" not in cmd


def _gone(processes, psutil, timeout: float = 30.0) -> list:
    """The processes still alive (zombies count as gone) after waiting up to `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    alive = list(processes)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p, psutil)]
        time.sleep(0.2)
    return alive


def _alive(process, psutil) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SIGKILL"])
def test_no_rank_survives_the_command_that_started_it(tmp_path, how):
    """`adapttoken answer --tp 2` stopped (a signal it can forward) or killed (one it cannot): torchrun and both
    ranks end with it, instead of running on for minutes. The question is long enough (30,000 tokens per group
    pass) that the ranks would still be working when the check ends."""
    import signal

    psutil = pytest.importorskip("psutil")
    question = make_question(seed=3, num_frames=512)
    video = write_video_file(question, tmp_path / "needle.mp4")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    command = subprocess.Popen(
        [sys.executable, "-m", "adapttoken_plugin.cli", "answer", "--model", str(NEEDLE_MODEL_DIR), "--video",
         str(video), "--question", "x" * 30_000, "--fps", "4", "--max-frames", "512", "--quiet", "--tp", "2"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        below = _ranks_of(psutil.Process(command.pid), psutil)
        command.send_signal(getattr(signal, how))
        code = command.wait(timeout=90)
        assert _gone(below, psutil) == []
        if how != "SIGKILL":
            assert code == 128 + getattr(signal, how)
    finally:
        for process in psutil.Process().children(recursive=True):  # whatever the test itself left running
            process.kill()


LMMS_ARGS = ["--model", "adapttoken_qwen2_5_vl", "--model_args", "pretrained=m,device=cpu", "--tasks", "t",
             "--limit", "-1", "--output_path=out", "--log_samples"]


@pytest.fixture
def outside_a_launcher(monkeypatch):
    """No launcher variables; `relaunch` records its arguments instead of starting torchrun."""
    for key in ("LOCAL_RANK", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(key, raising=False)
    started = []
    monkeypatch.setattr(launch, "relaunch", lambda tp, argv: started.append((tp, list(argv))) or 0)
    return started


@pytest.fixture
def in_a_rank(monkeypatch):
    """Rank 0 of 2 as torchrun starts it; joining the group and lmms-eval itself are recorded."""
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    calls = []
    monkeypatch.setattr(launch, "relaunch", lambda *a: pytest.fail("a rank must not start more ranks"))
    monkeypatch.setattr(launch, "init_rank", lambda tp, timeout: calls.append(("init_rank", tp, timeout.seconds)))
    monkeypatch.setattr(tensor_parallel, "run_lmms_eval", lambda args: calls.append(("lmms-eval", list(args))) or 0)
    return calls


def test_lmms_eval_command_keeps_lmms_eval_arguments_in_order():
    args, rest = cli.lmms_eval_command(["--tp", "2", "--rank-timeout", "30", *LMMS_ARGS])
    assert (args.tp, args.rank_timeout, rest) == (2, 30.0, LMMS_ARGS)
    args, rest = cli.lmms_eval_command([*LMMS_ARGS[:2], "--tp=4", *LMMS_ARGS[2:]])  # --tp anywhere
    assert (args.tp, args.rank_timeout, rest) == (4, cli.RANK_TIMEOUT, LMMS_ARGS)
    args, rest = cli.lmms_eval_command(["--tp", "2", "--", *LMMS_ARGS])
    assert rest == LMMS_ARGS
    _, rest = cli.lmms_eval_command(["--tp", "2", "--rank", "1"])  # an option of lmms-eval's, not --rank-timeout
    assert rest == ["--rank", "1"]


@pytest.mark.parametrize("argv", [["--tp", "1", "--model", "m"], ["--model", "m"]])
def test_lmms_eval_command_needs_two_ranks_or_more(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.lmms_eval_command(argv)
    assert exit_.value.code == 2 and "--tp" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["lmms-eval", "--tp", "2", *LMMS_ARGS],
                                     ["answer", "--model", "m", "--video", "{video}", "--question", "q", "--tp", "2"]])
def test_outside_a_launcher_the_command_starts_its_ranks_with_its_own_command_line(outside_a_launcher, command,
                                                                                   tmp_path):
    video = write_video_file(make_question(seed=1, num_frames=8), tmp_path / "v.mp4")  # answer opens it first
    command = [str(video) if part == "{video}" else part for part in command]
    assert main(command) == 0
    assert outside_a_launcher == [(2, command)]


@pytest.mark.parametrize("missing, extra", [("deepspeed", "deepspeed"), ("lmms_eval", "eval")])
def test_lmms_eval_names_a_missing_extra_before_any_rank_starts(outside_a_launcher, monkeypatch, capsys, missing,
                                                                 extra):
    """Without DeepSpeed every rank used to fail with its own ImportError traceback."""
    monkeypatch.setitem(sys.modules, missing, None)
    assert main(["lmms-eval", "--tp", "2", *LMMS_ARGS]) == 2
    assert f"pip install 'adapttoken[{extra}]'" in capsys.readouterr().err and outside_a_launcher == []


def test_each_rank_joins_the_group_and_runs_lmms_eval(in_a_rank):
    assert main(["lmms-eval", "--tp", "2", "--rank-timeout", "30", *LMMS_ARGS]) == 0
    assert in_a_rank == [("init_rank", 2, 30), ("lmms-eval", LMMS_ARGS)]


def test_a_rank_that_cannot_join_reports_why(in_a_rank, monkeypatch, capsys):
    def refuse(tp, timeout):
        raise ConfigError("--tp 3 but the launcher started 2 ranks")

    monkeypatch.setattr(launch, "init_rank", refuse)
    assert main(["lmms-eval", "--tp", "3", *LMMS_ARGS]) == 2
    assert "started 2 ranks" in capsys.readouterr().err and in_a_rank == []


def test_relaunch_runs_the_cli_module_under_torchrun(monkeypatch):
    seen = {}

    class Torchrun:
        pid = -1

        def __init__(self, cmd, env, **kwargs):
            seen.update(cmd=cmd, env=env, **kwargs)

        def wait(self):
            return 5

    monkeypatch.delenv("LOCAL_SIZE", raising=False)
    monkeypatch.setattr(launch.subprocess, "Popen", Torchrun)
    assert launch.relaunch(2, ["answer", "--tp", "2"]) == 5
    assert seen["start_new_session"]  # a process group of its own, which signals are forwarded to
    assert seen["cmd"][seen["cmd"].index("--nproc_per_node=2") + 1:] == ["-m", "adapttoken_plugin.cli", "answer",
                                                                          "--tp", "2"]
    assert seen["env"]["LOCAL_SIZE"] == "2"


@pytest.mark.parametrize("command", ["answer", "lmms-eval"])
def test_the_launch_module_is_an_alias_of_the_cli_command(monkeypatch, command):
    seen = []
    monkeypatch.setattr(launch_alias, "cli_main", lambda argv: seen.append(argv) or 0)
    assert launch_alias.main(["--tp", "2", "--timeout", "30", command, "--model", "m"]) == 0
    assert seen == [[command, "--tp", "2", "--rank-timeout", "30.0", "--model", "m"]]
    if command == "lmms-eval":  # and the CLI reads that back as it was meant
        args, rest = cli.lmms_eval_command(seen[0][1:])
        assert (args.tp, args.rank_timeout, rest) == (2, 30.0, ["--model", "m"])


def test_the_cli_default_rank_timeout_is_the_library_default():
    from adapttoken_plugin.distributed import DEFAULT_TIMEOUT

    assert cli.RANK_TIMEOUT == DEFAULT_TIMEOUT.total_seconds()


def test_each_python_environment_builds_torch_extensions_in_its_own_folder(monkeypatch, tmp_path):
    """DeepSpeed's CPU kernel used to be built into ~/.cache/torch_extensions/py311_cu130, shared by every
    virtualenv of that Python: each rebuilt it over the others' on its first --tp run."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    one, other = launch.extensions_dir("/envs/one/.venv"), launch.extensions_dir("/envs/other/.venv")
    assert one != other and launch.extensions_dir("/envs/one/.venv") == one
    assert one.startswith(str(tmp_path / "adapttoken" / "torch_extensions" / "one-venv-"))  # not a hidden folder
    environ = {"WORLD_SIZE": "2", "LOCAL_RANK": "0"}
    monkeypatch.setattr(launch.os, "environ", environ)  # the rank's environment, as torchrun gives it
    launch.init_rank_environment()
    assert environ["TORCH_EXTENSIONS_DIR"] == launch.extensions_dir()
    mine = {"WORLD_SIZE": "2", "LOCAL_RANK": "0", "TORCH_EXTENSIONS_DIR": "/my/extensions"}
    monkeypatch.setattr(launch.os, "environ", mine)
    launch.init_rank_environment()
    assert mine["TORCH_EXTENSIONS_DIR"] == "/my/extensions"  # the user's own choice stands


def test_rank_zero_says_when_the_cpu_kernel_is_about_to_be_compiled(tmp_path):
    """The first --tp run on a CPU machine compiled for minutes without a word."""
    notice = launch.kernel_build_notice(str(tmp_path))
    assert notice is not None and launch.CPU_ALL_REDUCE_KERNEL in notice and "few minutes" in notice
    (tmp_path / launch.CPU_ALL_REDUCE_KERNEL).mkdir()
    (tmp_path / launch.CPU_ALL_REDUCE_KERNEL / f"{launch.CPU_ALL_REDUCE_KERNEL}.so").write_bytes(b"")
    assert launch.kernel_build_notice(str(tmp_path)) is None


def test_a_rank_releases_its_own_all_reduce_buffer_by_deepspeeds_name(tmp_path, monkeypatch):
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    monkeypatch.setenv("MASTER_PORT", "29517")
    # the names DeepSpeed's shm.cpp gives them: deepspeed_allreduce_buffer_{uid}_{MASTER_ADDR}_{MASTER_PORT}_{rank}
    names = [f"deepspeed_allreduce_buffer_{os.getuid()}_localhost_29517_{rank}" for rank in (0, 1)]
    other_launch = f"deepspeed_allreduce_buffer_{os.getuid()}_localhost_29518_1"
    for name in [*names, other_launch]:
        (tmp_path / name).write_bytes(b"\0" * 8)
    assert launch.release_cpu_all_reduce_buffer(1, str(tmp_path)) is True
    assert sorted(p.name for p in tmp_path.iterdir()) == [names[0], other_launch]
    assert launch.release_cpu_all_reduce_buffer(1, str(tmp_path)) is False  # released already: nothing to do
