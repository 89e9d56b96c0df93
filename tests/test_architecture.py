"""ARCHITECTURE.md stays true: every path it names exists, and every top-level module or package of the
library is named in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "partnerkpi"
TEXT = (ROOT / "ARCHITECTURE.md").read_text()


def named_paths() -> list[str]:
    """The backticked tokens of ARCHITECTURE.md that look like paths (a file with an extension, or a folder/)."""
    tokens = re.findall(r"`([^`\s]+)`", TEXT)
    return [t for t in tokens if re.fullmatch(r"[\w./*+-]+(\.(py|yaml|md|html)|/)", t)]


def test_architecture_names_enough_paths():
    assert len(named_paths()) >= 40


def test_every_path_named_exists():
    """A path with a folder is read from the repository or the package; a bare file name (in a table row of
    its package) must exist somewhere in the package."""
    missing = []
    for token in named_paths():
        pattern = token.rstrip("/")
        found = [*ROOT.glob(pattern), *PACKAGE.glob(pattern)] if "/" in pattern else list(PACKAGE.rglob(pattern))
        if not found:
            missing.append(token)
    assert missing == []


def test_every_top_level_module_is_named():
    tops = {p.name + ("/" if p.is_dir() else "") for p in PACKAGE.iterdir()
            if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and (p / "__init__.py").exists())}
    assert tops, "the package has modules"
    assert sorted(t for t in tops if f"`{t}`" not in TEXT) == []


def test_a_missing_path_would_be_caught():
    assert not list(PACKAGE.glob("engine/no_such_module.py"))
    assert "engine/compute.py" in named_paths()
