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
  DeepSpeed on CPU needs float32 or bfloat16 weights (its float16 default is refused). There DeepSpeed
  compiles its shared-memory all-reduce kernel on first use, for minutes: rank 0 says so first, and
  `TORCH_EXTENSIONS_DIR` (where torch builds it) defaults to a folder of this Python environment's own
  (`extensions_dir`), since torch's default in the home folder is shared by every virtualenv of one Python
  version, each rebuilding it over the others'.
- a timeout on every collective, so a rank that stops taking part ends the run with an error.
- DeepSpeed's CPU all-reduce kernel keeps one shared-memory buffer a rank (69 MB, in `/dev/shm`) and never
  removes it: every run would leave them behind until the machine's memory is full. Once every rank has
  mapped every buffer, each rank unlinks its own (`release_cpu_all_reduce_buffer`); the mappings stay valid.

No rank outlives the command that started it: `relaunch` forwards SIGINT, SIGTERM and SIGHUP to torchrun
(which stops its ranks) and waits for it; torchrun is told to end when its parent dies (a killed command,
SIGKILL included), and every rank when its launcher dies (`end_with_launcher`).
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import os
import signal
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


#: signals a command forwards to the ranks it started
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h): a signal the kernel sends when the parent thread ends


def relaunch(tp: int, argv: Sequence[str], entry: str = RANK_ENTRY) -> int:
    """Run the CLI command `argv` (`adapttoken ARGV`, e.g. `answer --tp 2 ...`) as `tp` ranks under
    torchrun, each running module `entry` with it again (then `in_rank()`); returns torchrun's exit code,
    or 128 + the signal's number when this process was told to stop.

    torchrun runs in a process group of its own; SIGINT, SIGTERM and SIGHUP sent to this process are
    forwarded to that group and this process waits until torchrun has stopped its ranks. torchrun gets
    SIGTERM when this process dies without a chance to forward anything (SIGKILL), on Linux.
    """
    env = dict(os.environ)
    env.setdefault("LOCAL_SIZE", str(tp))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={tp}",
           "-m", entry, *argv]
    # its own session: a Ctrl-C in the terminal reaches torchrun once, through this process, not twice
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=_end_with_parent)
    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:  # torchrun ended already
            pass

    previous = {}
    try:
        for sig in FORWARDED_SIGNALS:
            previous[sig] = signal.signal(sig, forward)
    except ValueError:  # not the main thread: nothing can be forwarded, the parent-death signal still holds
        pass
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 + received[0] if received else code


def end_with_launcher() -> None:
    """Make this rank receive SIGTERM when the process that launched it ends (Linux; elsewhere a no-op), and
    end now if it has already: a rank whose launcher is gone would otherwise wait for the others for minutes."""
    if _end_with_parent() and os.getppid() == 1:  # the launcher ended before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)


def _end_with_parent() -> bool:
    """Ask the kernel for SIGTERM when this process's parent ends; whether it could (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


#: DeepSpeed's CPU shared-memory all-reduce, compiled on first use (`deepspeed.comm.torch.build_shm_op`)
CPU_ALL_REDUCE_KERNEL = "deepspeed_shm_comm"


def init_rank_environment() -> None:
    """Fill in what DeepSpeed needs and the launcher did not set (see the module docstring)."""
    import torch

    os.environ.setdefault("LOCAL_SIZE", os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", extensions_dir())
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def extensions_dir(prefix: str = sys.prefix) -> str:
    """Where torch builds C++ extensions for the Python environment at `prefix` (a virtualenv, a conda env):
    `~/.cache/adapttoken/torch_extensions/<its folder names>-<hash of its path>` (or under `$XDG_CACHE_HOME`),
    e.g. `project-venv-1a2b3c4d5e6f` for `/home/me/project/.venv`."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    real = os.path.realpath(prefix)
    key = hashlib.sha256(real.encode()).hexdigest()[:12]
    names = [part.lstrip(".") for part in real.split(os.sep)[-2:]]
    return os.path.join(cache, "adapttoken", "torch_extensions", "-".join([*filter(None, names), key]))


#: the name DeepSpeed's CPU all-reduce kernel gives each rank's shared-memory buffer, followed by
#: `_{uid}_{MASTER_ADDR}_{MASTER_PORT}_{rank}` (`shm_initialize` in deepspeed/ops/csrc/cpu/comm/shm.cpp)
CPU_ALL_REDUCE_BUFFER = "deepspeed_allreduce_buffer"
#: where shm_open keeps shared-memory objects on Linux
SHARED_MEMORY_DIR = "/dev/shm"


def cpu_all_reduce_buffer(rank: int, shm_dir: str = SHARED_MEMORY_DIR) -> str:
    """The path of rank `rank`'s all-reduce buffer in this launch (`MASTER_ADDR` and `MASTER_PORT` name it)."""
    name = (f"{CPU_ALL_REDUCE_BUFFER}_{os.getuid()}_{os.environ.get('MASTER_ADDR', '')}_"
            f"{os.environ.get('MASTER_PORT', '')}_{rank}")
    return os.path.join(shm_dir, name)


def release_cpu_all_reduce_buffer(rank: int, shm_dir: str = SHARED_MEMORY_DIR) -> bool:
    """Unlink this rank's all-reduce buffer (whether there was one). Call it when every rank has mapped every
    buffer (after `deepspeed.init_distributed` and a barrier): the memory is freed when the last rank ends,
    however it ends, instead of staying in `/dev/shm` for good."""
    try:
        os.unlink(cpu_all_reduce_buffer(rank, shm_dir))
    except FileNotFoundError:  # no kernel (CUDA, ranks on several machines), or released already
        return False
    return True


def kernel_build_notice(extensions: str, kernel: str = CPU_ALL_REDUCE_KERNEL) -> str | None:
    """What to tell the user before DeepSpeed compiles `kernel` under `extensions` (None when it is built)."""
    if glob.glob(os.path.join(glob.escape(extensions), kernel, "*.so")):
        return None
    return (f"adapttoken: DeepSpeed compiles its CPU all-reduce kernel ({kernel}) for this Python environment "
            f"into {os.path.join(extensions, kernel)}: the first --tp run here takes a few minutes, later ones "
            "reuse it")


def init_rank(tp: int, timeout: timedelta = DEFAULT_TIMEOUT) -> None:
    """Join the process group of `tp` ranks (one per GPU: `cuda:LOCAL_RANK`; gloo on CPU)."""
    import torch

    from ..checks import require
    from ..errors import ConfigError

    if not in_rank():
        raise ConfigError(f"--tp {tp}: this process was not started by a distributed launcher (torchrun, deepspeed): "
                          "run the command itself, which starts its ranks (`adapttoken answer --tp N ...`)")
    init_rank_environment()
    world = int(os.environ["WORLD_SIZE"])
    if world != tp:
        raise ConfigError(f"--tp {tp} but the launcher started {world} ranks; pass the same number to both")
    require("deepspeed", "tensor parallelism (--tp N)", "deepspeed")
    import deepspeed
    import torch.distributed as dist

    if dist.is_initialized():
        return
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    elif os.environ.get("LOCAL_RANK") == "0":  # init_distributed builds the kernel here, silently, on first use
        notice = kernel_build_notice(os.environ["TORCH_EXTENSIONS_DIR"])
        if notice is not None:
            print(notice, file=sys.stderr, flush=True)
    deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo", timeout=timeout, verbose=False)
    if not cuda:
        # each rank returns from init_distributed once it has mapped every rank's buffer; after the barrier, all have
        dist.barrier()
        release_cpu_all_reduce_buffer(dist.get_rank())
