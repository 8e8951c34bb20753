"""Start N tensor-parallel ranks on one machine and run an adapttoken command on each.

    python -m adapttoken_plugin.launch --tp 2 answer --model PATH --video FILE --question ...
    python -m adapttoken_plugin.launch --tp 2 lmms-eval --model ... --tasks ... --output_path out/
    adapttoken answer --tp 2 ...                 # the same as the first line

Run outside a launcher, it re-executes itself under `torchrun --standalone --nproc_per_node N`; run
under `torchrun` or `deepspeed` already, it is one rank. Each rank then sets what DeepSpeed and
torch.distributed need and were not given (`init_rank_environment`) and joins the process group:

- `LOCAL_SIZE` = the ranks on this machine: DeepSpeed's CPU shared-memory all-reduce uses it to know that
  every rank is local; without it the kernel is used uninitialised and crashes every rank (SIGSEGV).
  The `deepspeed` launcher sets it; `torchrun` sets only `LOCAL_WORLD_SIZE`.
- `DS_ACCELERATOR=cpu` when no CUDA device is present, and the gloo backend there (nccl on CUDA);
  DeepSpeed on CPU needs float32 or bfloat16 weights (its float16 default is refused).
- a timeout on every collective, so a rank that stops taking part ends the run with an error.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta

from ..distributed import DEFAULT_TIMEOUT
from ..integrations.lmms_eval.tensor_parallel import (  # noqa: F401 (lmms_eval_*: old import path)
    lmms_eval_args_for_rank,
    lmms_eval_sees_one_process,
    run_lmms_eval,
)

COMMANDS = ("answer", "lmms-eval")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m adapttoken_plugin.launch",
                                     description="run an adapttoken command on N tensor-parallel ranks")
    parser.add_argument("--tp", type=int, required=True, help="ranks (processes, one GPU each) to split the "
                        "language model over")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT.total_seconds(),
                        help="seconds a rank waits for the others at a collective before failing")
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's own arguments")
    return parser


def in_rank() -> bool:
    """Whether this process was started by a distributed launcher (torchrun, deepspeed)."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def relaunch(tp: int, argv: Sequence[str]) -> int:
    """Run `python -m adapttoken_plugin.launch ARGV` as `tp` ranks under torchrun; returns its exit code."""
    env = dict(os.environ)
    env.setdefault("LOCAL_SIZE", str(tp))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={tp}",
           "-m", "adapttoken_plugin.launch", *argv]
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if not in_rank():
        return relaunch(args.tp, argv)
    timeout = timedelta(seconds=args.timeout)
    init_rank(args.tp, timeout)
    if args.command == "lmms-eval":
        return run_lmms_eval(args.args)
    from ..cli import main as cli_main

    return cli_main(["answer", "--tp", str(args.tp), "--rank-timeout", str(args.timeout), *args.args])


if __name__ == "__main__":
    sys.exit(main())
