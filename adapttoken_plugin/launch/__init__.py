"""Start N tensor-parallel ranks on one machine, and join one of them: the library the CLI's `--tp N`
commands run on (the CLI imports this package, never the reverse).

    adapttoken answer --tp 2 --model PATH --video FILE --question ...
    adapttoken lmms-eval --tp 2 --model ... --tasks ... --output_path out/
    python -m adapttoken_plugin.launch --tp 2 answer|lmms-eval ...   # the older spelling, still accepted

Run outside a launcher, a command re-executes itself under `torchrun --standalone --nproc_per_node N`
(`relaunch`, which starts the CLI module by name); run under `torchrun` or `deepspeed` already (`in_rank`),
it is one rank. Each rank then sets what DeepSpeed and torch.distributed need and were not given
(`init_rank_environment`) and joins the process group (`init_rank`):

- `LOCAL_SIZE` = the ranks on this machine: DeepSpeed's CPU shared-memory all-reduce uses it to know that
  every rank is local; without it the kernel is used uninitialised and crashes every rank (SIGSEGV).
  The `deepspeed` launcher sets it; `torchrun` sets only `LOCAL_WORLD_SIZE`.
- `DS_ACCELERATOR=cpu` when no CUDA device is present, and the gloo backend there (nccl on CUDA);
  DeepSpeed on CPU needs float32 or bfloat16 weights (its float16 default is refused).
- a timeout on every collective, so a rank that stops taking part ends the run with an error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta

from ..distributed import DEFAULT_TIMEOUT
from ..integrations.lmms_eval.tensor_parallel import (  # noqa: F401 (their import path before they moved)
    lmms_eval_args_for_rank,
    lmms_eval_sees_one_process,
)

#: the module each rank runs: named, not imported, so that the launcher does not depend on the CLI
RANK_ENTRY = "adapttoken_plugin.cli"


def in_rank() -> bool:
    """Whether this process was started by a distributed launcher (torchrun, deepspeed)."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def relaunch(tp: int, argv: Sequence[str]) -> int:
    """Run the CLI command `argv` (`adapttoken ARGV`, e.g. `answer --tp 2 ...`) as `tp` ranks under
    torchrun, each running it again (then `in_rank()`); returns torchrun's exit code."""
    env = dict(os.environ)
    env.setdefault("LOCAL_SIZE", str(tp))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={tp}",
           "-m", RANK_ENTRY, *argv]
    return subprocess.run(cmd, env=env, check=False).returncode


def init_rank_environment() -> None:
    """Fill in what DeepSpeed needs and the launcher did not set (see the module docstring)."""
    import torch

    os.environ.setdefault("LOCAL_SIZE", os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def init_rank(tp: int, timeout: timedelta = DEFAULT_TIMEOUT) -> None:
    """Join the process group of `tp` ranks (one per GPU: `cuda:LOCAL_RANK`; gloo on CPU)."""
    import torch

    from ..errors import ConfigError

    init_rank_environment()
    world = int(os.environ["WORLD_SIZE"])
    if world != tp:
        raise ConfigError(f"--tp {tp} but the launcher started {world} ranks; pass the same number to both")
    import deepspeed
    import torch.distributed as dist

    if dist.is_initialized():
        return
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo", timeout=timeout, verbose=False)
