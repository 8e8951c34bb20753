"""One rank of the lmms-eval sharding test (started by test_lmms_eval_sharding.py under torchrun).

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/distributed/lmms_worker.py TASK_DIR OUT

Runs lmms-eval's own `simple_evaluate` on the local `tp_probe` task twice with a model that records the
documents it is asked about: as lmms-eval shards them (plain), then inside
`tensor_parallel.lmms_eval_sees_one_process` (what the launcher runs lmms-eval in). Writes OUT/rank{r}.json.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import torch
from lmms_eval.api.model import lmms


class RecordingModel(lmms):
    """Answers every question with its document id; remembers the ids, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []
        self.device = torch.device("cpu")

    def generate_until(self, requests):
        answers = []
        for _, _, _, doc_id, _, _ in [r.args for r in requests]:
            self.seen.append(int(doc_id))
            answers.append(str(doc_id))
        return answers

    def loglikelihood(self, requests):
        raise NotImplementedError

    def generate_until_multi_round(self, requests):
        raise NotImplementedError


def evaluate(task_dir: str) -> tuple[list[int], dict | None]:
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    model = RecordingModel()
    results = simple_evaluate(model=model, tasks=["tp_probe"], task_manager=TaskManager(include_path=task_dir),
                              log_samples=False, batch_size=1, distributed_executor_backend="torchrun")
    return model.seen, None if results is None else results["results"]["tp_probe"]["acc,none"]


def main(task_dir: str, out: str) -> None:
    from adapttoken_plugin.integrations.lmms_eval.tensor_parallel import lmms_eval_sees_one_process
    from adapttoken_plugin.launch import init_rank

    init_rank(2, timedelta(seconds=120))
    plain = evaluate(task_dir)
    with lmms_eval_sees_one_process():
        masked = evaluate(task_dir)
    rank = torch.distributed.get_rank()
    (Path(out) / f"rank{rank}.json").write_text(json.dumps({"plain": plain, "masked": masked}))


if __name__ == "__main__":
    main(*sys.argv[1:])
