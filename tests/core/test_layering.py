"""The generator is a leaf: no domain package imports ``irtrepro.synth``."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "irtrepro"
#: Modules that may build or regenerate synthetic studies: the generator itself, the report
#: and and the commands that drive it.
ALLOWED = ("synth/", "report/", "commands/", "pipeline.py")


def _synth_imports(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        if any(n == "irtrepro.synth" or n.startswith("irtrepro.synth.") for n in names):
            lines.append(node.lineno)
    return lines


def test_domain_packages_do_not_import_synth():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(ALLOWED) or rel in ALLOWED:
            continue
        found += [f"irtrepro/{rel}:{line}" for line in _synth_imports(path)]
    assert found == [], f"imports of irtrepro.synth outside the generator: {found}"
