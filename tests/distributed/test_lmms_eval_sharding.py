"""lmms-eval under tensor parallelism: its own evaluator (0.7.3, installed) shards documents by
RANK / WORLD_SIZE; inside `tensor_parallel.lmms_eval_sees_one_process` every rank gets every document,
in the same order, while torch.distributed keeps the real 2-rank group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def test_every_rank_sees_every_document_in_order(tmp_path):
    task = tmp_path / "task"
    task.mkdir()
    docs = task / "docs.jsonl"
    # the recording model answers with the document id: documents 0, 2 and 4 are right
    docs.write_text("".join(json.dumps({"question": f"q{i}", "answer": str(i) if i % 2 == 0 else "x"}) + "\n"
                            for i in range(6)))
    (task / "tp_probe.yaml").write_text((HERE / "lmms_probe" / "tp_probe.yaml").read_text()
                                        .replace("DOCS_JSONL", str(docs)))
    (task / "utils.py").write_text((HERE / "lmms_probe" / "utils.py").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_SIZE")}
    env.update(OMP_NUM_THREADS="1", HF_HOME=str(tmp_path / "hf"), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(HERE / "lmms_worker.py"), str(task), str(tmp_path)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    # as lmms-eval shards them: half the documents each, only rank 0 gets the scores
    assert [r["plain"][0] for r in ranks] == [[0, 2, 4], [1, 3, 5]]
    assert [r["plain"][1] for r in ranks] == [0.5, None]
    # masked: all six, in the same order, on both ranks; both compute the same score
    assert [r["masked"] for r in ranks] == [[[0, 1, 2, 3, 4, 5], 0.5]] * 2
