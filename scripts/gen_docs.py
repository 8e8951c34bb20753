"""Rewrite the generated tables in README.md and docs/config.md (`--check`: only report stale copies).

    python scripts/gen_docs.py            # after adding a selector, a family or a config setting
    python scripts/gen_docs.py --check    # exit 1 when a copy is stale (tests/test_doc_tables.py does this)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adapttoken_plugin.doc_tables import stale_files

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report stale copies, change nothing")
    args = parser.parse_args()
    stale = stale_files(ROOT, write=not args.check)
    for rel in stale:
        print(f"{'stale' if args.check else 'rewritten'}: {rel}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
