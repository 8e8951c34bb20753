"""adapttoken_plugin: entropy-guided visual-token selection (AdaptToken) for unmodified video LLMs.

    import adapttoken_plugin as at
    at.enable(model, at.AdaptTokenConfig(selector="adapttoken", budget=7040))
    model.generate(**processor(text=..., videos=...))       # selection runs inside
    model.adapttoken_trace                                    # what happened
    at.disable(model)                                         # exactly as before

Importing the package is cheap: torch and transformers are imported on first use of a name that needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import AdaptTokenConfig
from .errors import (
    AdaptTokenError,
    CalibrationError,
    ConfigError,
    DatasetError,
    EmptyVideoError,
    NoVideoError,
    OptionsRequiredError,
    OutputInUseError,
    RankDivergenceError,
    RankTimeoutError,
    RegistryError,
    UnsupportedInputError,
    UnsupportedModelError,
    VideoReadError,
)
from .registry import ADAPTERS, SELECTORS

__version__ = "0.2.0"

_LAZY = {
    "enable": "binding",
    "disable": "binding",
    "is_enabled": "binding",
    "Pipeline": "pipeline",
    "Answer": "pipeline",
    "Trace": "trace",
    "adapter_for": "adapters.base",
    "ModelAdapter": "adapters.base",
    "Selector": "selectors.base",
    "Selection": "layout",
    "GroupEvidence": "layout",
    "VideoLayout": "layout",
    "Stage": "stage",
    "Query": "stage",
}

__all__ = [
    "ADAPTERS", "SELECTORS", "AdaptTokenConfig", "AdaptTokenError", "CalibrationError", "ConfigError", "DatasetError",
    "EmptyVideoError", "NoVideoError", "OptionsRequiredError", "OutputInUseError", "RankDivergenceError",
    "RankTimeoutError", "RegistryError", "UnsupportedInputError", "UnsupportedModelError", "VideoReadError", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
