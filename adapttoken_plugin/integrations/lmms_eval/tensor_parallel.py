"""lmms-eval on tensor-parallel ranks: every rank runs lmms-eval's own CLI on every document, with its
slice of the language model, and only rank 0 writes results (`adapttoken lmms-eval --tp N ...`).

lmms-eval shards documents over processes by the `RANK` / `WORLD_SIZE` environment variables (data
parallelism); tensor-parallel ranks must instead all see every document in the same order, since
each forward pass needs every rank. `lmms_eval_sees_one_process` masks those variables, and the
`adapttoken_*` models (`model.AdaptTokenLMM`) read `tensor_parallel_lmms_eval()` to split their
language model over the ranks instead of asking accelerate for a device per process.

Only the standard library is imported here (lmms-eval inside `run_lmms_eval`), so the CLI and the
models can import this module cheaply.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

# set inside `lmms_eval_sees_one_process`. It lives here, not in the command that sets it: under torchrun
# the CLI runs as `__main__`, and a module imported by its name again (by the models) would be a second copy
_tensor_parallel_lmms_eval = False


def tensor_parallel_lmms_eval() -> bool:
    """Whether lmms-eval runs inside `lmms_eval_sees_one_process` (`adapttoken lmms-eval --tp N`): the
    adapttoken lmms-eval models then split their language model over the ranks instead of letting
    lmms-eval or accelerate shard the documents."""
    return _tensor_parallel_lmms_eval


@contextmanager
def lmms_eval_sees_one_process() -> Iterator[None]:
    """lmms-eval shards documents by the `RANK` / `WORLD_SIZE` environment variables; tensor-parallel
    ranks must all see every document in the same order. Inside this context those variables read
    rank 0 of 1, while torch.distributed keeps the real group (and `LOCAL_RANK` the real device)."""
    global _tensor_parallel_lmms_eval
    saved = {key: os.environ.get(key) for key in ("RANK", "WORLD_SIZE")}
    os.environ.update(RANK="0", WORLD_SIZE="1")
    _tensor_parallel_lmms_eval = True
    try:
        yield
    finally:
        _tensor_parallel_lmms_eval = False
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def lmms_eval_args_for_rank(args: Sequence[str], rank: int) -> list[str]:
    """lmms-eval's arguments for one rank: rank 0 keeps them; the others drop `--output_path` and
    `--log_samples`, so only rank 0 writes results (every rank computes them, each from all documents)."""
    if rank == 0:
        return list(args)
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--output_path":
            skip = True
        elif arg != "--log_samples" and not arg.startswith("--output_path="):
            kept.append(arg)
    return kept


def run_lmms_eval(args: Sequence[str]) -> int:
    """Run lmms-eval's own command line with `args` on this rank of the process group (joined already,
    e.g. by `launch.init_rank`), inside `lmms_eval_sees_one_process`; returns the exit code (0)."""
    import torch.distributed as dist
    from lmms_eval.__main__ import cli_evaluate

    saved_argv = sys.argv
    sys.argv = ["lmms-eval", *lmms_eval_args_for_rank(args, dist.get_rank())]
    try:
        with lmms_eval_sees_one_process():
            cli_evaluate()
    finally:
        sys.argv = saved_argv
    return 0
