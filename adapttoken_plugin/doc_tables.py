"""The tables the docs show, generated from the registries and the config schema.

    adapttoken list --markdown            # print the selector, family and configuration tables
    python scripts/gen_docs.py [--check]  # rewrite (or check) the copies in README.md and docs/config.md

A checked-in copy sits between `<!-- BEGIN GENERATED: name -->` and `<!-- END GENERATED: name -->`;
tests/test_doc_tables.py fails when a copy is stale.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from .config import settings_table
from .errors import AdaptTokenError
from .registry import ADAPTERS, SELECTORS


def selectors_table() -> str:
    """One row per registered selector: what it does, the evidence it needs, the settings it reads."""
    rows = ["| selector | what it does | evidence | settings it reads | keeps exactly the budget |",
            "|---|---|---|---|---|"]
    for name in SELECTORS.names():
        cls = SELECTORS.get(name)
        evidence = cls.evidence()  # features, group passes or the early-layer pass, from the declaration
        reads = ", ".join(f"`{s}`" for s in cls.reads) or "-"
        if cls.needs_group_pass:
            reads += " + early-layer settings" if cls.early_layer_pass else " + group-pass settings"
        summary = SELECTORS.meta(name).get("summary", "")
        rows.append(f"| `{name}` | {summary} | {evidence} | {reads} | {'yes' if cls.exact_budget else 'no'} |")
    return "\n".join(rows)


def families_table() -> str:
    """One row per registered model adapter: its classes, frame unit and declared capabilities."""
    rows = ["| adapter | model classes | frame unit | text per frame unit | streaming `Pipeline` | summary |",
            "|---|---|---|---|---|---|"]
    for name in ADAPTERS.names():
        cls, meta = ADAPTERS.get(name), ADAPTERS.meta(name)
        classes = ", ".join(f"`{c}`" for c in meta.get("model_classes", ()))
        unit = f"{cls.frames_per_unit} frame{'s' if cls.frames_per_unit > 1 else ''}"
        rows.append(f"| `{name}` | {classes} | {unit} | {'yes' if cls.has_unit_text else 'no'} | "
                    f"{'yes' if cls.supports_streaming else 'no'} | {meta.get('summary', '')} |")
    return "\n".join(rows)


#: generated table name -> (the function that makes it, the files that hold a copy, relative to the repository)
TABLES: dict[str, tuple[Callable[[], str], tuple[str, ...]]] = {
    "selectors": (selectors_table, ("README.md",)),
    "families": (families_table, ("README.md",)),
    "config": (settings_table, ("docs/config.md",)),
}


def _region(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- BEGIN GENERATED: {name} -->\n)(.*?)(<!-- END GENERATED: {name} -->)", re.S)


def render(text: str, name: str, table: str) -> str:
    """`text` with the region `name` replaced by `table`; raises AdaptTokenError when the markers are missing."""
    pattern = _region(name)
    if not pattern.search(text):
        raise AdaptTokenError(f"no <!-- BEGIN GENERATED: {name} --> ... <!-- END GENERATED: {name} --> region found")
    return pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(3), text, count=1)


def stale_files(root: str | Path, write: bool = False) -> list[str]:
    """The files under `root` whose generated regions differ from what the code generates now (rewritten
    when `write`)."""
    root = Path(root)
    wanted: dict[str, str] = {}
    for name, (make, files) in TABLES.items():
        for rel in files:
            wanted[rel] = render(wanted.get(rel) or (root / rel).read_text(), name, make())
    stale = [rel for rel, text in wanted.items() if (root / rel).read_text() != text]
    if write:
        for rel in stale:
            (root / rel).write_text(wanted[rel])
    return stale


def markdown() -> str:
    """Every generated table with a heading (what `adapttoken list --markdown` prints)."""
    return "\n\n".join(f"## {name}\n\n{make()}" for name, (make, _) in TABLES.items()) + "\n"
