"""Registries find their entries themselves: every module of their package, then the entry points of their group.

The end-to-end test installs a selector the way a third-party package would (a distribution on the path with an
`adapttoken_plugin.selectors` entry point) and sees it in `adapttoken list`, in an ablation grid with the axes it
declares and in the selector contract suite, with no file of this repository edited.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adapttoken_plugin import ADAPTERS, SELECTORS
from adapttoken_plugin.errors import RegistryError
from adapttoken_plugin.registry import Registry

REPO = Path(__file__).resolve().parents[2]


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_a_module_dropped_into_the_package_is_registered_without_a_list(tmp_path, monkeypatch):
    _write(tmp_path, {
        "found_pkg/__init__.py": "",
        "found_pkg/registry.py": """
            from adapttoken_plugin.registry import Registry
            THINGS = Registry("thing", "found_pkg.things", "found_pkg.no_such_group")
        """,
        "found_pkg/things/__init__.py": "",
        "found_pkg/things/base.py": "class Thing: ...\n",
        "found_pkg/things/alpha.py": """
            from ..registry import THINGS
            from .base import Thing
            @THINGS.register("alpha", summary="a")
            class Alpha(Thing): ...
        """,
        "found_pkg/things/beta.py": """
            from ..registry import THINGS
            @THINGS.register("beta")
            class Beta: ...
        """,
        "found_pkg/things/_private.py": "raise RuntimeError('modules starting with _ are not imported')\n",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    from found_pkg.registry import THINGS

    assert "beta" not in THINGS._entries  # nothing imported before the first lookup
    assert THINGS.names() == ["alpha", "beta"]
    assert THINGS.meta("alpha") == {"summary": "a"} and THINGS.origin("beta") == "found_pkg.things.beta"
    with pytest.raises(RegistryError, match="unknown thing 'gamma'; registered: \\['alpha', 'beta'\\]"):
        THINGS.get("gamma")


def test_the_built_in_registries_hold_every_module_of_their_folder():
    package = REPO / "adapttoken_plugin"
    for registry, folder, helpers in ((SELECTORS, "selectors", {"base"}),
                                      (ADAPTERS, "adapters", {"base", "sequence", "one_dim"})):
        modules = {p.stem for p in (package / folder).glob("*.py") if not p.stem.startswith("_")} - helpers
        origins = {registry.origin(name).rsplit(".", 1)[-1] for name in registry.names()
                   if registry.origin(name).startswith(f"adapttoken_plugin.{folder}.")}
        assert origins == modules


def test_a_name_registered_twice_is_refused():
    registry = Registry("thing", "adapttoken_plugin.selectors", "no.such.group")
    registry.register("x")(type("A", (), {}))
    with pytest.raises(RegistryError, match="already registered"):
        registry.register("x")(type("B", (), {}))


def _distribution(root: Path, name: str, module: str, entries: str, code: str) -> None:
    """A distribution as pip would leave it in site-packages: the module and a .dist-info with entry points."""
    _write(root, {
        f"{module}/__init__.py": "",
        f"{module}/strategy.py": code,
        f"{name}-0.1.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
        f"{name}-0.1.dist-info/entry_points.txt": f"[adapttoken_plugin.selectors]\n{entries}\n",
    })


def _run(args: list[str], site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


KEEP_FIRST = """
    import torch

    from adapttoken_plugin import SELECTORS, Selection, Selector


    @SELECTORS.register("keep-first", summary="the first tokens of the video, up to the budget")
    class KeepFirst(Selector):
        needs_group_pass = False
        reads = ("budget",)

        def select(self, layout, groups):
            kept = torch.arange(min(self.config.budget, layout.num_tokens)){reverse}
            return Selection(kept, [int(torch.isin(g.token_ids, kept).sum()) for g in groups])
"""


def test_a_third_party_selector_is_listed_gridded_and_contract_tested(tmp_path):
    _distribution(tmp_path, "my_strategies", "my_strategies", "keep-first = my_strategies.strategy",
                  KEEP_FIRST.format(reverse=""))
    listed = _run(["-m", "adapttoken_plugin.cli", "list"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "keep-first" in listed.stdout and "the first tokens of the video" in listed.stdout
    assert "reads: budget\n" in listed.stdout
    grid = _run(["-c", textwrap.dedent("""
        from adapttoken_plugin import AdaptTokenConfig
        from adapttoken_plugin.ablation import Grid, expand_grid
        grid = Grid(("keep-first",), budgets=("1/16", "64"), tau=(0.5, 2.0), theta=(0.1,), scoring_layer=(1, 2))
        for spec in expand_grid(grid, AdaptTokenConfig(), default_scoring_layer=1):
            print(spec.to_dict())
    """)], tmp_path)
    assert grid.returncode == 0, grid.stderr
    runs = [eval(line) for line in grid.stdout.splitlines()]  # noqa: S307 (our own dict reprs)
    assert [r["budget"] for r in runs] == ["1/16", "64"]  # only the axis it declares is expanded
    assert all(r["tau"] is None and r["theta"] is None and r["scoring_layer"] is None for r in runs)
    suite = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/selectors/test_selector_contract.py",
                  "-k", "keep-first"], tmp_path)
    assert suite.returncode == 0, suite.stdout[-3000:]
    assert "\n4 passed, " in suite.stdout  # the four per-selector contract tests ran on it


def test_the_contract_suite_fails_a_third_party_selector_that_breaks_it(tmp_path):
    _distribution(tmp_path, "bad_strategies", "bad_strategies", "keep-first = bad_strategies.strategy",
                  KEEP_FIRST.format(reverse=".flip(0)"))
    suite = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/selectors/test_selector_contract.py",
                  "-k", "keep-first"], tmp_path)
    assert suite.returncode == 1
    assert "strictly ascending" in suite.stdout


def test_a_broken_entry_point_names_itself(tmp_path):
    _distribution(tmp_path, "broken_strategies", "broken_strategies", "oops = broken_strategies.missing_module",
                  "")
    listed = _run(["-m", "adapttoken_plugin.cli", "list"], tmp_path)
    assert listed.returncode == 2
    assert "entry point 'oops'" in listed.stderr and "broken_strategies 0.1" in listed.stderr
