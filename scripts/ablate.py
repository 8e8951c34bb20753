"""Ablation sweep in one command: selectors x budgets x tau x theta x scoring layer x frames per group.

See adapttoken_plugin/ablation/command.py (`python scripts/ablate.py --help`).
"""

import sys

from adapttoken_plugin.ablation.command import main

if __name__ == "__main__":
    sys.exit(main())
