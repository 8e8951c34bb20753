"""Tensor parallelism for the selector stage: the group a model's heads are split over, an exact score reduction
across its ranks, and checks that every rank took the same decisions.

Under tensor parallelism (DeepSpeed inference on the language model, `integrations/deepspeed.py`) each rank
holds a slice of every layer's attention heads, so the scoring hook sees only its local heads;
`scoring.reduce_scores_across_ranks` combines them over the group attached here, so that every rank ranks the
tokens from the same, full-head scores. Everything else the stage reads is replicated (vision tower,
embeddings, `lm_head`, the residual stream after each all-reduce), so identical inputs give bitwise identical
decisions on every rank. `check_ranks_agree` verifies that at each decision point (inputs, every group's
evidence, the selection, the answer): a mismatch raises `RankDivergenceError` on every rank, and a rank that
stops taking part makes the others raise `RankTimeoutError` after the timeout instead of hanging.

With no tensor-parallel group attached (one process, or data-parallel processes that each run their
own documents) every function here is a no-op and the single-process code path is unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from .errors import RankDivergenceError, RankTimeoutError

_ATTRIBUTE = "_adapttoken_tensor_parallel"
DEFAULT_TIMEOUT = timedelta(minutes=10)


@dataclass(frozen=True)
class TensorParallel:
    """The ranks one model is split over.

    Attributes:
        group: process group of the sharded language model (scores are all-reduced over it).
        check_group: a gloo group over the same ranks for the consistency checks; gloo's
            `monitored_barrier` names the ranks that did not arrive.
        rank / world_size: this process's rank in `group` and the group's size.
        timeout: how long a check waits for the other ranks.
    """

    group: Any
    check_group: Any
    rank: int
    world_size: int
    timeout: timedelta


def attach(model: Any, group: Any, timeout: timedelta = DEFAULT_TIMEOUT) -> TensorParallel:
    """Record that `model`'s language model is split over `group`. Collective: every rank of the
    group must call it, in the same order as its other collectives."""
    import torch.distributed as dist

    ranks = dist.get_process_group_ranks(group)
    check_group = dist.new_group(ranks, timeout=timeout, backend="gloo")
    tp = TensorParallel(group, check_group, dist.get_rank(group), dist.get_world_size(group), timeout)
    model.__dict__[_ATTRIBUTE] = tp
    return tp


def attach_native(model: Any, timeout: timedelta = DEFAULT_TIMEOUT) -> None:
    """Attach a model that transformers itself split (`from_pretrained(..., distributed_config=
    DistributedConfig(tp_size=N))`) to its tensor-parallel group, once. Collective, like `attach`; a
    no-op for any other model."""
    mesh = getattr(model, "_device_mesh", None)
    if _ATTRIBUTE in model.__dict__ or mesh is None or (getattr(model, "tp_size", None) or 1) <= 1:
        return
    attach(model, mesh["tp"].get_group(), timeout)


def tensor_parallel_of(model: Any) -> TensorParallel | None:
    """The tensor-parallel group `model` was attached to, or None (one process)."""
    tp = model.__dict__.get(_ATTRIBUTE)
    return tp if tp is not None and tp.world_size > 1 else None


def is_main_process(model: Any) -> bool:
    """Whether this process writes results for `model`: always, except on ranks > 0 of a tensor-parallel group."""
    tp = tensor_parallel_of(model)
    return tp is None or tp.rank == 0


def fingerprint(*values: Any) -> torch.Tensor:
    """(4,) int64 digest (SHA-256) of tensors, numbers, strings and JSON-able values, exact to the bit."""
    digest = hashlib.sha256()
    for value in values:
        if isinstance(value, torch.Tensor):
            flat = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{flat.dtype}{tuple(value.shape)}".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
        else:
            digest.update(json.dumps(value, sort_keys=True, default=repr).encode())
    return torch.frombuffer(bytearray(digest.digest()), dtype=torch.int64).clone()


def check_ranks_agree(model: Any, what: str, *values: Any) -> None:
    """Raise on every rank unless every rank of `model`'s tensor-parallel group passes the same `values`
    at this step (`what` names it in the message). A no-op without a tensor-parallel group."""
    tp = tensor_parallel_of(model)
    if tp is None:
        return
    import torch.distributed as dist

    mine = fingerprint(*values)
    try:
        dist.monitored_barrier(group=tp.check_group, timeout=tp.timeout, wait_all_ranks=True)
        gathered = [torch.empty_like(mine) for _ in range(tp.world_size)]
        dist.all_gather(gathered, mine, group=tp.check_group)
    except RuntimeError as error:  # gloo reports a missing rank or a timeout as RuntimeError
        raise RankTimeoutError(f"tensor-parallel rank {tp.rank}: the other ranks did not reach the check of {what} "
                               f"within {tp.timeout.total_seconds():.0f} s ({error})") from error
    differ = [r for r, theirs in enumerate(gathered) if not torch.equal(theirs, gathered[0])]
    if differ:
        raise RankDivergenceError(
            f"tensor-parallel ranks diverged at {what}: ranks {differ} differ from rank 0 (seen on rank {tp.rank}); "
            "every rank must get the same inputs and settings"
        )


# moved to integrations/lmms_eval/tensor_parallel.py (they undo lmms-eval's document sharding); the old
# import path still works, resolved on use so that importing this module does not load the integration
_MOVED_TO_LMMS_EVAL = ("tensor_parallel_lmms_eval", "lmms_eval_sees_one_process")


def __getattr__(name: str) -> Any:
    """The names that moved to the lmms-eval integration, from their new module."""
    if name in _MOVED_TO_LMMS_EVAL:
        from .integrations.lmms_eval import tensor_parallel

        return getattr(tensor_parallel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
