"""One exception hierarchy for everything the plugin refuses to do.

Every message names the offending value and what was expected, so a user can fix the call without
reading our source.
"""

import sys
from collections.abc import Callable


class AdaptTokenError(Exception):
    """Base class of every error raised by adapttoken_plugin."""


class ConfigError(AdaptTokenError, ValueError):
    """A configuration key is unknown, has the wrong type, or is out of range."""


class RegistryError(AdaptTokenError, KeyError):
    """A name was looked up in a registry that does not hold it."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class UnsupportedModelError(AdaptTokenError, TypeError):
    """No model adapter is registered for this model class."""


class UnsupportedInputError(AdaptTokenError, ValueError):
    """The inputs are of a form the selector stage cannot handle (batch > 1, images with video, ...)."""


class NoVideoError(UnsupportedInputError):
    """The prompt or inputs hold no video where one is required."""


class OptionsRequiredError(AdaptTokenError, ValueError):
    """The configured entropy needs answer options, but none were given."""


class VideoReadError(AdaptTokenError, OSError):
    """The video file is missing, unreadable, or has no decodable frames."""


class EmptyVideoError(VideoReadError):
    """Frame sampling produced zero frames."""


class OutputInUseError(AdaptTokenError, OSError):
    """Another run is writing to the same output folder (two ablation sweeps on one `--out`)."""


class DatasetError(AdaptTokenError, ValueError):
    """An ablation dataset (annotation file) is missing, malformed, or names a video that does not exist."""


class RankDivergenceError(AdaptTokenError, RuntimeError):
    """Tensor-parallel ranks reached the same step with different values (inputs, evidence, selection, answer)."""


class RankTimeoutError(AdaptTokenError, RuntimeError):
    """A tensor-parallel rank did not reach a consistency check within the timeout."""


class CalibrationError(AdaptTokenError, ValueError):
    """Calibration questions cannot give a theta: none given, entropies that are not finite numbers >= 0, or a
    target skip share no theta reaches on them (`adapttoken calibrate`)."""


def exit_code(prog: str, run: Callable[[], int]) -> int:
    """`run()`'s exit code; an `AdaptTokenError` it raises becomes one line `<prog>: error: <message>` on
    stderr and exit code 2 (a command-line user sees what to fix, not a traceback)."""
    try:
        return run()
    except AdaptTokenError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
