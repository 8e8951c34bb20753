"""Decorator registries: one line adds a selector strategy or a model adapter.

    @SELECTORS.register("adapttoken")
    class AdaptTokenSelector(Selector): ...

    @ADAPTERS.register("qwen2_5_vl", model_classes=("Qwen2_5_VLForConditionalGeneration",))
    class Qwen2_5_VLAdapter(ModelAdapter): ...

Entries are imported lazily (by module path) so that `import adapttoken_plugin` and
`adapttoken list` do not import torch or transformers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import RegistryError


@dataclass
class Registry:
    """A name -> object mapping filled by a decorator, with lazily imported built-in modules."""

    kind: str
    builtin_modules: tuple[str, ...] = ()
    _entries: dict[str, Any] = field(default_factory=dict)
    _meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    _loaded: bool = False

    def register(self, name: str, **meta: Any) -> Callable[[Any], Any]:
        """Class decorator adding `obj` under `name`; `meta` is stored for listings."""

        def add(obj: Any) -> Any:
            if name in self._entries and self._entries[name] is not obj:
                raise RegistryError(f"{self.kind} {name!r} is already registered to {self._entries[name]!r}")
            self._entries[name] = obj
            self._meta[name] = dict(meta)
            obj.registry_name = name
            return obj

        return add

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self.builtin_modules:
                importlib.import_module(module)

    def get(self, name: str) -> Any:
        self._load_builtins()
        if name not in self._entries:
            raise RegistryError(f"unknown {self.kind} {name!r}; registered: {self.names()}")
        return self._entries[name]

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return self._meta[name]

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


# Selector modules import only the standard library and torch lazily; adapters import torch.
SELECTORS = Registry(
    "selector",
    builtin_modules=tuple(
        f"adapttoken_plugin.selectors.{m}"
        for m in ("full", "uniform", "random", "attention_topk", "adapttoken", "adapttoken_lite")
    ),
)
ADAPTERS = Registry(
    "model adapter",
    builtin_modules=tuple(
        f"adapttoken_plugin.adapters.{m}"
        for m in ("qwen2_5_vl", "qwen2_vl", "qwen3_vl", "internvl", "llava_onevision", "llava_next_video")
    ),
)
