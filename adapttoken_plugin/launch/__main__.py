"""`python -m adapttoken_plugin.launch --tp N [--timeout S] answer|lmms-eval ARGS...`: the older spelling
of `adapttoken answer --tp N ARGS...` and `adapttoken lmms-eval --tp N ARGS...`, kept as an alias (it is
also what `deepspeed --module adapttoken_plugin.launch ...` runs on each rank).

A `__main__` module of its own, so that the launcher package itself never imports the CLI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..cli import main as cli_main
from ..distributed import DEFAULT_TIMEOUT

COMMANDS = ("answer", "lmms-eval")


def build_parser() -> argparse.ArgumentParser:
    """The alias's own options; everything after the command goes to that command."""
    parser = argparse.ArgumentParser(prog="python -m adapttoken_plugin.launch",
                                     description="run an adapttoken command on N tensor-parallel ranks (the same "
                                     "as `adapttoken answer --tp N ...` / `adapttoken lmms-eval --tp N ...`)")
    parser.add_argument("--tp", type=int, required=True, help="ranks (processes, one GPU each) to split the "
                        "language model over")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT.total_seconds(),
                        help="seconds a rank waits for the others at a collective before failing")
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's own arguments")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `adapttoken COMMAND --tp N --rank-timeout S ARGS...`; returns its exit code."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    return cli_main([args.command, "--tp", str(args.tp), "--rank-timeout", str(args.timeout), *args.args])


if __name__ == "__main__":
    sys.exit(main())
