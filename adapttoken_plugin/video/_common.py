"""What both decoding backends share: the time-to-index rounding rule, import probes, error text.

decord and PyAV are imported inside functions, so importing this module stays cheap.
"""

from __future__ import annotations

# Rounding of a time (in frame units) to a frame index: a timestamp half-way between two frames goes up
# in both backends even though decord gives float32 seconds (off by up to ~0.007 frame after an hour)
HALF_UP = 0.51


def decord_available() -> bool:
    """Whether decord imports (its native library can be missing or broken)."""
    try:
        import decord  # noqa: F401
    except Exception:  # a broken native library raises OSError, not ImportError
        return False
    return True


def pyav_available() -> bool:
    """Whether PyAV (`av`) imports."""
    try:
        import av  # noqa: F401
    except Exception:
        return False
    return True


def error_cause(error: BaseException) -> str:
    """`Type: first line of the message` of a decoder error, for a VideoReadError's text."""
    # decord's messages carry a C++ stack trace; its first line says what went wrong
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
