"""The clock of the selector stage's seconds (`Trace.seconds`): plain wall-clock time, or, with `sync_timing`,
wall-clock time that is true on a GPU.

CUDA runs kernels asynchronously: `time.perf_counter()` around a model call measures when its kernels were queued,
and the wait for them lands on whatever reads a result first (a `.cpu()`, a `float(...)`), possibly in another
stage. With `sync_timing` the clock synchronises every CUDA device the model uses before it reads the time, so
each stage is charged with its own kernels, at the cost of the host-device overlap the waits remove (a few
per group pass). On a model without a CUDA device the clock never synchronises anything.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import torch


def cuda_devices(model: Any) -> tuple[torch.device, ...]:
    """The CUDA devices holding `model`'s parameters or buffers, in index order (empty for a CPU model; parameters
    that accelerate offloads wait on `meta` and add nothing)."""
    found = {t.device for t in (*model.parameters(), *model.buffers()) if t.device.type == "cuda"}
    return tuple(sorted(found, key=lambda d: -1 if d.index is None else d.index))


class StageClock:
    """`now()` in seconds (`time.perf_counter`); with `sync` it first waits for the kernels queued on `devices`.

        clock = StageClock.of_model(model, sync=config.sync_timing)
        start = clock.now()
        ...                                        # queue kernels
        trace.add_seconds("vision", clock.now() - start)

    Devices other than CUDA ones are ignored: on a CPU model `now()` is `time.perf_counter()` whatever `sync` says.
    """

    def __init__(self, devices: Iterable[torch.device | str] = (), sync: bool = False) -> None:
        self.devices = tuple(d for d in (torch.device(d) for d in devices) if d.type == "cuda")
        self.sync = bool(sync) and bool(self.devices)

    @classmethod
    def of_model(cls, model: Any, sync: bool) -> StageClock:
        """The clock of a stage on `model`: synchronising its CUDA devices when `sync`."""
        return cls(cuda_devices(model) if sync else (), sync)

    def now(self) -> float:
        """Seconds from an arbitrary origin; with `sync`, after the kernels queued so far have finished."""
        if self.sync:
            for device in self.devices:
                torch.cuda.synchronize(device)
        return time.perf_counter()
