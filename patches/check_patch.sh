#!/usr/bin/env bash
# Check that patches/llava-next-adapttoken.patch still applies (git apply --check; nothing is changed).
#   bash patches/check_patch.sh PATH
# PATH is a LLaVA-NeXT checkout (holds llava/model/builder.py) or an installed fork's package directory
# (holds model/builder.py, e.g. .../site-packages/llavaction). To apply it for real, run the printed
# command without --check.
set -euo pipefail
PATCH="$(cd "$(dirname "$0")" && pwd)/llava-next-adapttoken.patch"
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: bash patches/check_patch.sh PATH   (a LLaVA-NeXT checkout or a fork's package directory)" >&2
    exit 2
fi
cd "$1"
if [ -f llava/model/builder.py ]; then
    strip=1
elif [ -f model/builder.py ]; then
    strip=2  # a package directory: drop the leading llava/ of the patch's paths
else
    echo "$1: neither llava/model/builder.py nor model/builder.py found" >&2
    exit 2
fi
if git apply --check -p"$strip" "$PATCH"; then
    echo "applies: (cd $PWD && git apply -p$strip $PATCH)"
else
    echo "does NOT apply to $PWD" >&2
    exit 1
fi
