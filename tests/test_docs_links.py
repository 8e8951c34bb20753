"""No dangling links in the documentation.

Every relative link and image in the repository's Markdown files must point at an existing file, and
every `#anchor` into a Markdown file must name one of its headings (GitHub's slug rule). External
http(s) links are not fetched. Paths `docs/....md` named by the package, the scripts and `setup.cfg`
(docstrings that send the reader to a page) must exist too. Standard library only.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FOLDERS = ("docs", "eval", "patches")
SKIPPED_DIRS = {".git", "runs", "build", "node_modules", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache"}

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
# [text](target) and ![alt](target); the target may be <wrapped> and may carry a "title"
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.MULTILINE)
HTML_TARGET = re.compile(r"<(?:a|img|source)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
HTML_ANCHOR = re.compile(r"<[a-z][^>]*?\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
DOCS_PAGE = re.compile(r"(?<![\w/.-])docs/[\w./-]*?\.md\b")


def markdown_files() -> list[Path]:
    """README.md, CONTRIBUTING.md and the other top-level pages, and every page under docs/, eval/, patches/."""
    files = sorted(ROOT.glob("*.md"))
    for folder in DOC_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.md")):
            parts = path.relative_to(ROOT).parts[:-1]
            if not any(part in SKIPPED_DIRS or part.startswith(".venv") for part in parts):
                files.append(path)
    return files


def prose_lines(text: str) -> list[str]:
    """The lines of a Markdown text with fenced code blocks blanked out (line numbers are kept)."""
    lines, fence = [], None
    for line in text.split("\n"):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            lines.append("")
        elif fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            lines.append("")
        else:
            lines.append(line)
    return lines


def without_code_spans(text: str) -> str:
    return CODE_SPAN.sub(lambda m: " " * len(m.group(0)), text)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text, lowercase, with punctuation other than hyphens
    dropped and spaces turned into hyphens (`## LLaVA-NeXT forks (the `llava` codebase)` ->
    `llava-next-forks-the-llava-codebase`)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a Markdown page offers: heading slugs (repeats get -1, -2, ...) and HTML ids/names."""
    lines = prose_lines(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    seen: dict[str, int] = {}

    def add(heading: str) -> None:
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")

    previous = ""
    for line in lines:
        atx = ATX_HEADING.match(line)
        if atx:
            add(atx.group(2))
            previous = ""
            continue
        if (SETEXT_UNDERLINE.match(line) and previous.strip() and not previous.lstrip().startswith(("|", "-", "*", ">"))
                and not ATX_HEADING.match(previous)):
            add(previous)
            previous = ""
            continue
        found.update(HTML_ANCHOR.findall(line))
        previous = line
    return found


def link_targets(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link, image and reference definition outside code."""
    text = "\n".join(prose_lines(path.read_text(encoding="utf-8")))
    text = without_code_spans(text)
    targets = []
    for pattern in (INLINE_LINK, REFERENCE_DEFINITION, HTML_TARGET):
        for match in pattern.finditer(text):
            target = match.group(1).strip()
            if target.startswith("<") and target.endswith(">"):
                target = target[1:-1]
            targets.append((text.count("\n", 0, match.start()) + 1, target))
    return sorted(targets)


def broken_links(path: Path) -> list[str]:
    """One message per relative link of `path` whose file or heading does not exist."""
    problems = []
    for line, target in link_targets(path):
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue  # external (http, https, mailto, ...): not fetched
        where = f"{path.relative_to(ROOT)}:{line}: {target!r}"
        file_part, _, anchor = target.partition("#")
        file_part = unquote(file_part.split("?", 1)[0])
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{where} leaves the repository")
        elif not resolved.exists():
            problems.append(f"{where} -> {resolved.relative_to(ROOT)} does not exist")
        elif anchor and resolved.suffix == ".md":
            offered = anchors(resolved)
            if unquote(anchor) not in offered:
                problems.append(f"{where}: no heading '#{anchor}' in {resolved.relative_to(ROOT)} "
                                f"(headings: {sorted(offered)})")
    return problems


def docs_pages_named_in(path: Path) -> list[str]:
    """`docs/....md` paths written in a file (docstrings and comments that point at a page)."""
    return DOCS_PAGE.findall(path.read_text(encoding="utf-8"))


def code_files() -> list[Path]:
    return sorted((ROOT / "adapttoken_plugin").rglob("*.py")) + sorted((ROOT / "scripts").glob("*.py")) + [
        ROOT / "setup.cfg"]


MARKDOWN = markdown_files()


def test_the_pages_are_found():
    names = {str(p.relative_to(ROOT)) for p in MARKDOWN}
    assert {"README.md", "CONTRIBUTING.md", "docs/README.md", "eval/README.md"} <= names


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(path: Path):
    problems = broken_links(path)
    assert not problems, "dangling links:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_pages_named_in_code_spans_exist(path: Path):
    text = "\n".join(prose_lines(path.read_text(encoding="utf-8")))
    named = {page for _, span in CODE_SPAN.findall(text) for page in DOCS_PAGE.findall(span)}
    missing = sorted(page for page in named if not (ROOT / page).is_file())
    assert not missing, f"{path.relative_to(ROOT)} names pages that do not exist: {missing}"


def test_docs_pages_named_in_the_code_exist():
    missing = [f"{path.relative_to(ROOT)}: {page}" for path in code_files() if path.is_file()
               for page in docs_pages_named_in(path) if not (ROOT / page).is_file()]
    assert not missing, "pages named in the code that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("heading,slug", [
    ("LLaVA-NeXT forks (the `llava` codebase)", "llava-next-forks-the-llava-codebase"),
    ("Needle benchmark on the bundled trained model (`scripts/bench_needle.py`)",
     "needle-benchmark-on-the-bundled-trained-model-scriptsbench_needlepy"),
    ("Configuration (`AdaptTokenConfig`)", "configuration-adapttokenconfig"),
    ("Position rule: why the default differs from stock transformers",
     "position-rule-why-the-default-differs-from-stock-transformers"),
    ("Multi-GPU (large backbones)", "multi-gpu-large-backbones"),
    ("See [the docs](docs/README.md)", "see-the-docs"),
])
def test_github_slug(heading: str, slug: str):
    assert github_slug(heading) == slug


def test_a_broken_link_and_a_missing_heading_are_reported(tmp_path, monkeypatch):
    tmp_path = tmp_path.resolve()
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Title\n\n## Some section\n\n## Some section\n", encoding="utf-8")
    page.write_text(
        "# Page\n\n[ok](other.md#some-section) [ok too](other.md#some-section-1) [self](#page)\n"
        "[gone](missing.md) ![gone](img/none.png) [bad anchor](other.md#nothing)\n"
        "[web](https://example.com/x.md) `[in code](missing-too.md)`\n\n"
        "```\n[in a block](missing-three.md)\n```\n",
        encoding="utf-8",
    )
    problems = broken_links(page)
    assert len(problems) == 3, problems
    assert any("missing.md" in p for p in problems)
    assert any("img/none.png" in p for p in problems)
    assert any("#nothing" in p for p in problems)
