"""The error hierarchy: every class is importable from the package."""

from __future__ import annotations

import inspect

import adapttoken_plugin as at
from adapttoken_plugin import errors


def _error_classes() -> dict[str, type]:
    return {name: cls for name, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, at.AdaptTokenError) and cls.__module__ == errors.__name__}


def test_every_error_class_is_exported_from_the_package():
    for name, cls in _error_classes().items():
        assert getattr(at, name, None) is cls, name
        assert name in at.__all__, name
