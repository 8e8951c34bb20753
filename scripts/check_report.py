"""Render an adapttoken HTML report in headless Chromium and save a screenshot, as a user would see it.

    python scripts/check_report.py runs/demo/report.html runs/demo/report.png

Needs a Chromium binary (Debian: `apt-get install chromium`). Exits non-zero if the browser fails or the
screenshot is blank.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report")
    parser.add_argument("screenshot")
    parser.add_argument("--size", default="1280,2200", help="window width,height in px")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("no chromium binary found (apt-get install chromium)", file=sys.stderr)
        return 2
    out = Path(args.screenshot).resolve()
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", f"--window-size={args.size}", f"--screenshot={out}",
               Path(args.report).resolve().as_uri()]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    from matplotlib import image

    pixels = image.imread(out)
    if pixels.std() < 1e-3:
        print(f"{out} is blank", file=sys.stderr)
        return 1
    print(f"screenshot: {out} ({pixels.shape[1]}x{pixels.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
