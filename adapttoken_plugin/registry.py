"""Decorator registries: one line adds a selector strategy or a model adapter.

    @SELECTORS.register("adapttoken", summary="...")
    class AdaptTokenSelector(Selector): ...

    @ADAPTERS.register("qwen2_5_vl", model_classes=("Qwen2_5_VLForConditionalGeneration",), summary="...")
    class Qwen2_5_VLAdapter(ModelAdapter): ...

A registry fills itself on first lookup: it imports every module of its package (`adapttoken_plugin.selectors`,
`adapttoken_plugin.adapters`), so a new file there is registered with no list to edit, then loads the entry
points of its group (`adapttoken_plugin.selectors`, `adapttoken_plugin.adapters`), so another distribution
adds strategies and families without touching this one:

    # setup.cfg of a third-party package
    [options.entry_points]
    adapttoken_plugin.selectors =
        my_method = my_package.my_selector      # a module whose import registers, or the class itself

Nothing is imported before the first lookup, so `import adapttoken_plugin` stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import RegistryError


@dataclass
class Registry:
    """A name -> class mapping filled by a decorator, discovered from a package and an entry-point group.

    Attributes:
        kind: what an entry is, for messages ("selector", "model adapter").
        package: the package whose modules are imported on first lookup (each registers what it defines).
        entry_point_group: the entry-point group whose entries are loaded on first lookup.
    """

    kind: str
    package: str
    entry_point_group: str
    _entries: dict[str, Any] = field(default_factory=dict)
    _meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    _origin: dict[str, str] = field(default_factory=dict)
    _loaded: bool = False

    def register(self, name: str, **meta: Any) -> Callable[[Any], Any]:
        """Class decorator adding `obj` under `name`; `meta` is stored for listings (`summary`, ...)."""

        def add(obj: Any) -> Any:
            if name in self._entries and self._entries[name] is not obj:
                raise RegistryError(f"{self.kind} {name!r} is already registered to {self._entries[name]!r}; "
                                    f"pick another name for {obj!r}")
            self._entries[name] = obj
            self._meta[name] = dict(meta)
            self._origin[name] = getattr(obj, "__module__", "?")
            obj.registry_name = name
            return obj

        return add

    def load(self) -> None:
        """Import the package's modules and load the entry points (once; later calls do nothing)."""
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self.package)
        for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
            if not module.startswith("_"):
                importlib.import_module(f"{self.package}.{module}")
        for entry in sorted(importlib.metadata.entry_points(group=self.entry_point_group), key=lambda e: e.name):
            try:
                entry.load()
            except Exception as error:  # a broken plugin names itself instead of failing somewhere later
                raise RegistryError(
                    f"entry point {entry.name!r} = {entry.value!r} of group {self.entry_point_group!r} (installed by "
                    f"{_distribution_of(entry)}) failed to load: {type(error).__name__}: {error}"
                ) from error

    def get(self, name: str) -> Any:
        self.load()
        if name not in self._entries:
            raise RegistryError(f"unknown {self.kind} {name!r}; registered: {self.names()}")
        return self._entries[name]

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return self._meta[name]

    def origin(self, name: str) -> str:
        """The module that registered `name`."""
        self.get(name)
        return self._origin[name]

    def names(self) -> list[str]:
        self.load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _distribution_of(entry: importlib.metadata.EntryPoint) -> str:
    dist = getattr(entry, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"


SELECTORS = Registry("selector", "adapttoken_plugin.selectors", "adapttoken_plugin.selectors")
ADAPTERS = Registry("model adapter", "adapttoken_plugin.adapters", "adapttoken_plugin.adapters")
