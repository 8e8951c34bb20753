"""Per-instance attributes that `enable` sets and `disable` restores (never the class's).

Both bindings (`binding.py` for transformers models, `integrations/llava/binding.py` for the LLaVA-NeXT
codebase) wrap methods by setting instance attributes; what the instance had before (an accelerate hook,
say) is saved and put back exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MISSING = object()  # the instance had no attribute of that name


def save(model: Any, names: Iterable[str]) -> dict[str, Any]:
    """The instance's own values of `names` (MISSING where it has none)."""
    return {name: model.__dict__.get(name, MISSING) for name in names}


def restore(model: Any, saved: dict[str, Any]) -> None:
    """Put the saved values back; remove the attributes the instance did not have."""
    for name, previous in saved.items():
        if previous is MISSING:
            model.__dict__.pop(name, None)
        else:
            model.__dict__[name] = previous


def original(model: Any, name: str, saved: dict[str, Any]) -> Any:
    """The method a wrapper calls: the instance's earlier attribute, else the class's, bound to `model`."""
    previous = saved[name]
    return previous if previous is not MISSING else getattr(type(model), name).__get__(model)


def uninstall(model: Any, state_key: str) -> None:
    """Undo an `enable`: pop the state stored under `state_key`, put its `saved` attributes back and drop the
    `adapttoken_trace` attribute; nothing happens when the model holds no such state."""
    state = model.__dict__.pop(state_key, None)
    if state is not None:
        restore(model, state.saved)
        model.__dict__.pop("adapttoken_trace", None)
