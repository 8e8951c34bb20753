"""`integrations.lmms_eval.tensor_parallel`, in one process: what each rank of `adapttoken lmms-eval --tp N`
hands lmms-eval (its arguments, the masked RANK / WORLD_SIZE); the 2-rank runs are in tests/distributed
and test_lmms_eval_harness.py."""

from __future__ import annotations

import os

import pytest

from adapttoken_plugin import distributed, launch
from adapttoken_plugin.integrations.lmms_eval import tensor_parallel
from adapttoken_plugin.integrations.lmms_eval.tensor_parallel import (
    lmms_eval_args_for_rank,
    lmms_eval_sees_one_process,
    tensor_parallel_lmms_eval,
)


def test_only_rank_0_keeps_lmms_eval_outputs():
    args = ["--model", "m", "--output_path", "out/", "--log_samples", "--tasks", "videomme"]
    assert lmms_eval_args_for_rank(args, 0) == args
    assert lmms_eval_args_for_rank(args, 1) == ["--model", "m", "--tasks", "videomme"]
    assert lmms_eval_args_for_rank(["--output_path=out/", "--limit", "2"], 3) == ["--limit", "2"]


@pytest.mark.parametrize("outer", [{"RANK": "1", "WORLD_SIZE": "2"}, {}])
def test_lmms_eval_sees_rank_0_of_1_inside_and_the_real_ranks_after(monkeypatch, outer):
    for key in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in outer.items():
        monkeypatch.setenv(key, value)
    assert not tensor_parallel_lmms_eval()
    with pytest.raises(KeyError), lmms_eval_sees_one_process():  # restored even when lmms-eval raises
        assert (os.environ["RANK"], os.environ["WORLD_SIZE"]) == ("0", "1")
        assert tensor_parallel_lmms_eval()
        raise KeyError("lmms-eval failed")
    assert {k: os.environ[k] for k in ("RANK", "WORLD_SIZE") if k in os.environ} == outer
    assert not tensor_parallel_lmms_eval()


def test_the_old_import_paths_still_resolve():
    assert distributed.tensor_parallel_lmms_eval is tensor_parallel.tensor_parallel_lmms_eval
    assert distributed.lmms_eval_sees_one_process is tensor_parallel.lmms_eval_sees_one_process
    assert launch.lmms_eval_sees_one_process is tensor_parallel.lmms_eval_sees_one_process
    assert launch.lmms_eval_args_for_rank is tensor_parallel.lmms_eval_args_for_rank
    with pytest.raises(AttributeError):
        distributed.not_a_name  # noqa: B018
