"""What the package ships besides its modules: the PEP 561 `py.typed` marker (type checkers read the
package's own type hints only when it is there), present in the source and declared in setup.cfg's
package data, so that a wheel or an sdist install carries it.

The declaration is read from setup.cfg, not from a setuptools build: setuptools 69 and later copy
`py.typed` even when it is not declared (84.2 here), so a build would pass without it, while
pyproject.toml accepts setuptools from 64 on.
"""

from __future__ import annotations

import configparser
from fnmatch import fnmatch
from pathlib import Path

import adapttoken_plugin

PACKAGE_DIR = Path(adapttoken_plugin.__file__).resolve().parent
SETUP_CFG = PACKAGE_DIR.parent / "setup.cfg"


def package_data_patterns(setup_cfg: Path = SETUP_CFG, package: str = "adapttoken_plugin") -> list[str]:
    """The glob patterns of `[options.package_data]` for `package` (setuptools: comma or line separated)."""
    assert setup_cfg.is_file(), "run from a source checkout (setup.cfg next to the package)"
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    value = parser.get("options.package_data", package, fallback="")
    return [p.strip() for line in value.splitlines() for p in line.split(",") if p.strip()]


def declared(relative: str, patterns: list[str]) -> bool:
    """Whether a file at `relative` (to the package) matches a package-data pattern."""
    return any(fnmatch(relative, pattern) for pattern in patterns)


def test_py_typed_is_in_the_package():
    assert (PACKAGE_DIR / "py.typed").is_file()


def test_py_typed_is_declared_as_package_data():
    patterns = package_data_patterns()
    assert declared("py.typed", patterns), patterns
    assert declared("assets/needle-toy/model.safetensors", patterns)  # the bundled toy model: same line
    assert not declared("py.typed", ["assets/*/*"])  # what the check tells apart
