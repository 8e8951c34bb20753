"""Print a library path on which torchcodec finds FFmpeg: PyAV's bundled copy, when the system has none.

torchcodec's wheels do not bundle FFmpeg; they load `libavutil.so.<N>` and its siblings from the library
path. PyAV's wheel bundles FFmpeg under mangled names (`av.libs/libavutil-<hash>.so.59`), so a folder of
symlinks with the plain names, plus `av.libs` itself (the libraries' own dependencies), lets torchcodec
load it. The loader reads LD_LIBRARY_PATH when a process starts, so the path is for the next process:

    FFMPEG_PATH=$(python scripts/torchcodec_ffmpeg.py .venv/torchcodec-ffmpeg)
    export LD_LIBRARY_PATH="$FFMPEG_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

Prints nothing (exit 0) when torchcodec already loads FFmpeg, is not installed, or PyAV bundles no FFmpeg
libraries (a PyAV built against the system's FFmpeg). `scripts/dev.sh test` runs it so that the test
suite exercises the torchcodec backend on machines without a system FFmpeg.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# plain soname prefix of each FFmpeg library torchcodec links against
LIBRARIES = ("libavutil", "libavcodec", "libavformat", "libavdevice", "libavfilter", "libswscale", "libswresample")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import torchcodec
    except Exception:
        return 0
    if getattr(torchcodec, "ffmpeg_major_version", None) is not None:
        return 0  # it found an FFmpeg already
    try:
        import av
    except Exception:
        return 0
    bundled = Path(av.__file__).resolve().parent.parent / "av.libs"
    if not bundled.is_dir():
        return 0
    folder = Path(sys.argv[1]).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for library in bundled.iterdir():
        # libavutil-a63ffd27.so.59.39.100 -> libavutil.so.59
        match = re.fullmatch(r"(lib[a-z]+)-[0-9a-f]{8}\.so\.(\d+)(\.[\d.]+)?", library.name)
        if match is None or match.group(1) not in LIBRARIES:
            continue
        link = folder / f"{match.group(1)}.so.{match.group(2)}"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(library)
    print(f"{folder}:{bundled}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
