"""Copies into the feature store that do not stall the host: from a CUDA device to the CPU they go into pinned
memory with `non_blocking=True`, and a CUDA event says when they are complete.

The host then goes on (decoding the next group's frames, queueing its encoder) while the copy runs; whoever reads
the stored features first calls `PendingCopies.wait()`. Every other move (CPU to CPU, to a device, device to
device) is an ordinary `.to`, complete when it returns.
"""

from __future__ import annotations

import torch


class PendingCopies:
    """Events of device-to-host copies whose results must not be read yet; `wait()` before reading any of them."""

    def __init__(self) -> None:
        self._events: list[torch.cuda.Event] = []

    def __len__(self) -> int:
        return len(self._events)

    def record(self, device: torch.device) -> None:
        """Mark the end of the work queued so far on `device`'s current stream (the copies just queued)."""
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(device))
        self._events.append(event)

    def wait(self) -> None:
        """Block until every recorded copy is complete (no-op when none is pending)."""
        for event in self._events:
            event.synchronize()
        self._events.clear()


def needs_pinned_copy(source: torch.device, store: torch.device) -> bool:
    """Whether a copy from `source` to `store` is a device-to-host copy that can run without blocking the host."""
    return source.type == "cuda" and store.type == "cpu"


def copy_to_store(tensor: torch.Tensor, store: str | torch.device, pending: PendingCopies) -> torch.Tensor:
    """`tensor` on `store`. From a CUDA device to the CPU: a copy into pinned memory queued without blocking the
    host, complete only after `pending.wait()`; any other move: `tensor.to(store)` (`tensor` itself when it is
    there already), complete on return."""
    store = torch.device(store)
    if not needs_pinned_copy(tensor.device, store):
        return tensor.to(store)
    out = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    out.copy_(tensor, non_blocking=True)
    pending.record(tensor.device)
    return out
