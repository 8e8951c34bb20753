"""Checks the commands run on their inputs before any expensive work (`adapttoken answer`, `demo`, `ablate`).

Everything a user can get wrong on the command line fails here, before a model loads or a video is decoded,
with an `AdaptTokenError` (or an argparse usage error) that names the value and the fix: argument types,
torch devices and dtypes, output locations, and the optional packages a command needs (with the extra
that installs them).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

from .errors import ConfigError

#: model dtypes the commands accept (`auto`: the checkpoint's own)
DTYPES = ("auto", "float32", "bfloat16", "float16")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def check_dtype(dtype: str) -> None:
    """Raise ConfigError unless `dtype` is one of DTYPES."""
    if dtype not in DTYPES:
        raise ConfigError(f"dtype={dtype!r} is not known: expected one of {DTYPES}")


def check_device(device: str) -> None:
    """Raise ConfigError unless `device` names a torch device this machine has (`cpu`, `cuda`, `cuda:1`, `mps`)."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device={device!r} is not a torch device: expected cpu, cuda, cuda:N or mps") from None
    if parsed.type == "cpu":
        return
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device={device!r}: no CUDA device is available here (torch {torch.__version__}"
                              f"{' built without CUDA' if torch.version.cuda is None else ''}): use --device cpu")
        if parsed.index is not None and parsed.index >= count:
            raise ConfigError(f"device={device!r}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}")
        return
    backend = getattr(torch.backends, parsed.type, None) or getattr(torch, parsed.type, None)
    is_available = getattr(backend, "is_available", None)
    if is_available is None or not is_available():
        raise ConfigError(f"device={device!r}: no {parsed.type} device is available here: use --device cpu")


def check_output_file(path: str | os.PathLike[str], flag: str) -> Path:
    """Make sure a file can be written at `path` later: create its folder (as `--report` always did) and
    raise ConfigError, naming `flag`, when `path` is a folder or its folder cannot be made or written."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} is a folder: give a file name (in that folder, for one)")
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"{flag} {str(path)!r}: a file is in the way of its folder {str(folder)!r}") from None
    except OSError as error:
        raise ConfigError(f"{flag} {str(path)!r}: cannot create its folder {str(folder)!r} "
                          f"({error.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"{flag} {str(path)!r}: the folder {str(folder)!r} is not writable")
    return target


def check_output_folder(path: str | os.PathLike[str], flag: str) -> Path:
    """Create the folder `path` (and its parents) unless it exists; ConfigError, naming `flag`, when a file is
    there or in the way, or the folder cannot be made or written."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} is a file: give a folder (a new or an existing one)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"{flag} {str(path)!r}: a file is in the way of that folder") from None
    except OSError as error:
        raise ConfigError(f"{flag} {str(path)!r}: cannot create the folder ({error.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"{flag} {str(path)!r}: the folder is not writable")
    return folder


def require(module: str, what: str, extra: str) -> None:
    """Raise ConfigError when `module` cannot be found: `what` needs it and the `extra` installs it."""
    try:
        found = importlib.util.find_spec(module) is not None
    except ValueError:  # in sys.modules as None: an import that is known to fail
        found = False
    if not found:
        raise ConfigError(f"{what} needs {module}, which is not installed: pip install 'adapttoken[{extra}]' "
                          f"(from a clone: pip install -e '.[{extra}]')")
