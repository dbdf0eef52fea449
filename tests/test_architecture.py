"""The package's layout is its data flow: imports run one way, from later stages to earlier.

Each subpackage's ``__init__`` states what it may import; this test holds the code to it, so
a shortcut that would tie an early stage to a later one fails here rather than in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "escpredict"

SHARED = {"contract", "config", "yamlfile"}
#: What each part of the package may import besides itself (top-level modules by name).
ALLOWED: dict[str, set[str]] = {
    "contract": set(),
    "yamlfile": set(),
    "config": {"yamlfile"},
    "ingest": SHARED,
    "labels": SHARED | {"ingest"},
    "model": SHARED | {"labels"},
    "lifecycle": SHARED | {"ingest", "labels", "model"},
    "samples": SHARED | {"ingest"},
    "onboard": SHARED | {"ingest", "labels"},
    "scaleout": SHARED | {"ingest", "labels", "model", "lifecycle"},
    "report": SHARED | {"ingest", "labels", "model", "lifecycle"},
    "service": SHARED | {"model", "lifecycle"},
    "demo": SHARED | {"ingest", "labels", "model", "lifecycle", "samples", "report"},
    "cli": SHARED | {"ingest", "labels", "model", "lifecycle", "samples", "scaleout",
                     "onboard", "report", "service", "demo"},
    "__main__": {"cli"},
    "__init__": set(),
}


def part_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_parts(path: Path) -> set[str]:
    """Top-level parts of escpredict a module imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "escpredict" else [
                f"escpredict.{a.name}" for a in node.names]
        found |= {n.split(".")[1] for n in names if n.startswith("escpredict.")}
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_of_the_package_has_a_rule():
    assert {part_of(p) for p in MODULES} == set(ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path: Path):
    part = part_of(path)
    wrong = imported_parts(path) - ALLOWED[part] - {part}
    assert not wrong, f"{path.relative_to(PACKAGE)} ({part}) imports {sorted(wrong)}"


def test_nothing_imports_the_cli():
    importers = [p for p in MODULES if part_of(p) not in {"cli", "__main__"}
                 and "cli" in imported_parts(p)]
    assert not importers


@pytest.mark.parametrize("folder", sorted(
    p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()))
def test_each_subpackage_says_what_it_owns_and_may_import(folder: Path):
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
    assert "May import" in doc or "may import" in doc, folder.name
