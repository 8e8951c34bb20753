"""What the integration relies on in a LLaVA-NeXT codebase fork, found by structure, never by class name.

A LLaVA-NeXT model (`LlavaQwenForCausalLM` on `LlavaMetaForCausalLM`, or any fork's equivalent) is an
object with these methods (`REQUIRED_METHODS`), used with upstream's meaning:

- `prepare_inputs_labels_for_multimodal(input_ids, position_ids, attention_mask, past_key_values, labels,
  images, modalities)`: element 4 of what it returns is `inputs_embeds` (upstream returns 6 values,
  `llavaction` 7); called once per model on two frames, to check the layout against the fork's own;
- `encode_images(frames (T, 3, H, W)) -> (T, P, D)`: vision tower + projector;
- `get_2dPool(features (T, P, D)) -> (T, n, D)`: the fork's own spatial pooling at its default stride;
- `get_model()`: the decoder (`embed_tokens`, `layers[i].self_attn`, `image_newline`), called with
  `inputs_embeds`; `get_output_embeddings()`: the LM head;
- `generate(inputs, images, image_sizes, modalities, **kwargs)`, which after its multimodal preparation
  calls its parent's `generate(inputs_embeds=..., attention_mask=..., position_ids=..., **kwargs)`.

The package (`llava` upstream, `llavaction`, ...) is where `constants.IMAGE_TOKEN_INDEX` comes from; it
defaults to the package the model class lives in.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

from ...errors import UnsupportedModelError

REQUIRED_METHODS = ("prepare_inputs_labels_for_multimodal", "encode_images", "get_2dPool", "get_model", "generate")
#: upstream's value, used when the package has no `constants.IMAGE_TOKEN_INDEX`
DEFAULT_IMAGE_TOKEN_INDEX = -200


def is_llava_model(obj: Any) -> bool:
    """Whether `obj` (an instance or a class) has the LLaVA-NeXT structure."""
    return all(callable(getattr(obj, name, None)) for name in REQUIRED_METHODS)


def check_llava_model(model: Any) -> None:
    missing = [name for name in REQUIRED_METHODS if not callable(getattr(model, name, None))]
    if missing:
        raise UnsupportedModelError(
            f"{type(model).__name__} is not a LLaVA-NeXT codebase model: it lacks {missing} "
            f"(needed: {list(REQUIRED_METHODS)})"
        )


def package_of(model: Any) -> str:
    """Top-level package of the model's class (`llava`, `llavaction`, ...)."""
    return type(model).__module__.split(".", 1)[0]


def find_model_classes(package: str) -> list[type]:
    """The LLaVA-NeXT model classes (by structure) defined in `<package>.model.language_model.*` (or in the
    package's own modules when it has no such subpackage); modules that fail to import are skipped, as the
    fork's own `model/__init__.py` does. Raises UnsupportedModelError when the package has none."""
    try:
        root = importlib.import_module(package)
    except ImportError as exc:
        raise UnsupportedModelError(f"cannot import the LLaVA-NeXT package {package!r}: {exc}") from exc
    try:
        holder = importlib.import_module(f"{package}.model.language_model")
    except ImportError:
        holder = root
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(getattr(holder, "__path__", []), prefix=f"{holder.__name__}."):
        try:
            module = importlib.import_module(info.name)
        except Exception:  # forks ship modules that need optional extras (the fork's own loader skips them too)
            continue
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and is_llava_model(obj):
                found[f"{obj.__module__}.{name}"] = obj
    if not found:
        raise UnsupportedModelError(
            f"package {package!r} defines no class with {list(REQUIRED_METHODS)}: is it a LLaVA-NeXT fork?"
        )
    return [found[key] for key in sorted(found)]


def image_token_index(package: str) -> int:
    """The placeholder id the fork's tokenizer helper writes for `<image>` (upstream: -200)."""
    try:
        constants = importlib.import_module(f"{package}.constants")
    except ImportError:
        return DEFAULT_IMAGE_TOKEN_INDEX
    return int(getattr(constants, "IMAGE_TOKEN_INDEX", DEFAULT_IMAGE_TOKEN_INDEX))


def language_model_generate(model: Any) -> Any:
    """The parent `generate` the fork's multimodal `generate` hands `inputs_embeds` to (bound to `model`):
    the `generate` after the last class in the MRO whose own `generate` takes `images`."""
    owner = None
    for cls in type(model).__mro__:
        method = cls.__dict__.get("generate")
        if method is not None and "images" in inspect.signature(method).parameters:
            owner = cls
    if owner is None:
        raise UnsupportedModelError(f"{type(model).__name__} has no generate(..., images=...) method")
    return super(owner, model).generate


def alias_package(target: str, alias: str = "llava", modules: tuple[str, ...] = ()) -> None:
    """Make `import alias.<m>` give `target.<m>` for each `m` in `modules` (and their parents): code written
    for upstream's package name (lmms-eval's `llava_vid` imports `llava.*`) then runs on a fork installed
    under another name. The fork's own modules are imported and registered under the alias in
    `sys.modules`, not copied. Raises ConfigError when `alias` already names another package."""
    import sys

    from ...errors import ConfigError

    if target == alias:
        return
    names = {""}
    for module in modules:
        parts = module.split(".")
        names.update("." + ".".join(parts[:i]) for i in range(1, len(parts) + 1))
    for suffix in sorted(names, key=len):
        try:
            real = importlib.import_module(target + suffix)
        except ImportError as exc:
            raise ConfigError(f"cannot import {target + suffix!r} to stand in for {alias + suffix!r}: {exc}") from exc
        present = sys.modules.get(alias + suffix)
        if present is not None and present is not real:
            raise ConfigError(f"{alias + suffix!r} is already imported from {getattr(present, '__file__', present)}; "
                              f"it cannot also be the fork {target!r} (use one LLaVA-NeXT package per process)")
        sys.modules[alias + suffix] = real
