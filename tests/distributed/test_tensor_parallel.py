"""Tensor parallelism (2 ranks on the CPU, gloo) against the single-process model: DeepSpeed inference
on the language model, and transformers' own tensor parallelism.

Each case launches `tp_worker.py` under torchrun. The first launch compiles DeepSpeed's shared-memory
all-reduce kernel (about a minute on 2 cores; cached in ~/.cache/torch_extensions afterwards).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# the worker script beside this file (pytest puts this folder, which is no package, on sys.path)
from tp_worker import CONFIGS, record, record_families

from fixtures.tiny import qwen2_5_vl, qwen_video_inputs

WORKER = Path(__file__).parent / "tp_worker.py"
ROOT = Path(__file__).resolve().parents[2]


def launch(out: Path, diverge: str = "none", backend: str = "deepspeed") -> subprocess.CompletedProcess:
    """Run the worker as 2 ranks; the environment is the user's, minus anything of an outer launcher."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "LOCAL_SIZE", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    # the worker imports the shared test fixtures (tests/fixtures) as `fixtures`, as pytest does here
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "tests"), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER),
           str(out), diverge, backend]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module", params=["deepspeed", "transformers"])
def ranks(tmp_path_factory, request):
    """Both ranks' results of one launch of the worker with this backend."""
    out = tmp_path_factory.mktemp(request.param)
    before = shared_memory_buffers()
    done = launch(out, backend=request.param)
    assert done.returncode == 0, done.stderr[-4000:]
    left = shared_memory_buffers() - before
    results = [torch.load(out / f"rank{r}.pt") for r in range(2)]
    for result in results:
        result["shm_left"] = left
    return results


def shared_memory_buffers() -> set[str]:
    """DeepSpeed's CPU all-reduce buffers now in /dev/shm."""
    return {path.name for path in Path("/dev/shm").glob("deepspeed_allreduce_buffer_*")}


@pytest.fixture(scope="module")
def single():
    return record(qwen2_5_vl(num_layers=3), qwen_video_inputs())


@pytest.fixture(scope="module")
def single_families():
    return record_families()


def test_the_language_model_is_really_split(ranks):
    # tiny Qwen2.5-VL: 4 heads of 8 -> q_proj has 32 output rows, 16 per rank
    assert [r["local_q_rows"] for r in ranks] == [16, 16]
    assert [(r["tp_rank"], r["world_size"]) for r in ranks] == [(0, 2), (1, 2)]


def test_the_all_reduce_buffers_are_unlinked_while_mapped(ranks):
    """DeepSpeed's CPU all-reduce kernel maps one /dev/shm buffer a rank into every rank and never removes
    them; the launcher unlinks them once all are mapped, so a run leaves none behind (69 MB each)."""
    for r in ranks:
        # both ranks' buffers, by DeepSpeed's own names (shm.cpp: _{uid}_{MASTER_ADDR}_{MASTER_PORT}_{rank})
        assert len(r["shm_buffers"]) == 2
        assert [name.rsplit("_", 1)[-1] for name in r["shm_buffers"]] == ["0 (deleted)", "1 (deleted)"]
        assert all(f"deepspeed_allreduce_buffer_{os.getuid()}_" in name for name in r["shm_buffers"])
        assert r["shm_left"] == set()


def test_sharded_logits_equal_the_single_process_model(ranks, single):
    for r in ranks:
        torch.testing.assert_close(r["plain_logits"], single["plain_logits"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_both_ranks_select_and_answer_like_one_process(ranks, single, name):
    ref = single[name]
    assert 0 < len(ref["kept"]) < 32  # a real selection: 12 of the 32 visual tokens
    for r in ranks:
        got = r[name]
        assert got["kept"].tolist() == ref["kept"].tolist()
        torch.testing.assert_close(got["entropies"], ref["entropies"], rtol=0, atol=1e-5)
        torch.testing.assert_close(got["logits"], ref["logits"], rtol=0, atol=1e-5)
        assert torch.equal(got["answer"], ref["answer"])
    assert torch.equal(ranks[0][name]["entropies"], ranks[1][name]["entropies"])  # bitwise, not just close


def test_every_family_splits_like_one_process(ranks, single_families, request):
    assert sorted(single_families) == sorted(ranks[0]["families"])  # all six families ran
    # q_proj rows per rank at the scoring layer (32 unsplit): transformers 5.24 has no plan for Qwen3-VL's
    # language model (only its lm_head is split), so every rank there holds all heads
    unsplit = {"qwen3_vl"} if "transformers" in request.node.callspec.id else set()
    for r in ranks:
        assert {n: f["local_q_rows"] for n, f in r["families"].items()} == {
            n: 32 if n in unsplit else 16 for n in single_families}
    for name, ref in single_families.items():
        for r in ranks:
            got = r["families"][name]
            torch.testing.assert_close(got["plain_logits"], ref["plain_logits"], rtol=0, atol=1e-5, msg=name)
            assert got["max"]["kept"].tolist() == ref["max"]["kept"].tolist(), name
            assert len(ref["max"]["kept"]) == 3
            torch.testing.assert_close(got["max"]["logits"], ref["max"]["logits"], rtol=0, atol=1e-5, msg=name)
            assert torch.equal(got["max"]["answer"], ref["max"]["answer"]), name


def test_a_diverged_rank_fails_every_rank(tmp_path):
    # rank 1's video differs slightly: the all-reduces would even make the text rows (entropy, scores) agree,
    # so only the check of the visual features can see it
    done = launch(tmp_path, "pixels")
    assert done.returncode != 0
    for r in range(2):
        message = (tmp_path / f"rank{r}.err").read_text()
        assert message.startswith("RankDivergenceError") and "group 0's pass" in message and "ranks [1]" in message


def test_a_rank_that_stops_taking_part_is_an_error_not_a_hang(tmp_path):
    done = launch(tmp_path, "stall")
    assert done.returncode != 0
    message = (tmp_path / "rank0.err").read_text()  # rank 0 waited at the stage's first check
    assert message.startswith("RankTimeoutError") and "the settings and prompt" in message
    assert "Ranks 1 failed" in message
