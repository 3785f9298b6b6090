"""The arrows of docs/DESIGN.md, checked on the source with ``ast``.

- The domain packages (io, vision, features, breathing, keypoints, stats) never import
  ``irtrepro.report`` (anywhere in a file) nor matplotlib at module level: they return data,
  ``plots/`` draws and ``report/`` adapts.
- Only the generator itself, the report, the commands and the CLI import ``irtrepro.synth``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "irtrepro"
DOMAIN = ("io", "vision", "features", "breathing", "keypoints", "stats")
MAY_IMPORT_SYNTH = ("synth", "report", "commands")


def _imports(path: Path):
    """(module imported, line, at module level) of every import in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top = {id(n) for n in tree.body}
    # imports under `if TYPE_CHECKING:` or try/except at the top still run at import time
    for n in tree.body:
        if isinstance(n, ast.If | ast.Try):
            top |= {id(m) for m in ast.walk(n) if isinstance(m, ast.Import | ast.ImportFrom)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno, id(node) in top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno, id(node) in top
            for a in node.names:  # from irtrepro import report
                yield f"{node.module}.{a.name}", node.lineno, id(node) in top


def _is(name: str, pkg: str) -> bool:
    return name == pkg or name.startswith(pkg + ".")


def _rel(path: Path) -> str:
    return str(path.relative_to(PKG.parent))


def domain_violations() -> list[str]:
    out = {}  # one entry per import statement
    for sub in DOMAIN:
        for f in sorted((PKG / sub).rglob("*.py")):
            for name, line, top in _imports(f):
                if _is(name, "irtrepro.report"):
                    out.setdefault((f, line), f"{_rel(f)}:{line}: imports {name}")
                elif top and _is(name, "matplotlib"):
                    out.setdefault((f, line), f"{_rel(f)}:{line}: imports {name} at module level")
    return list(out.values())


def synth_violations() -> list[str]:
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        rel = f.relative_to(PKG)
        if rel.parts[0] in MAY_IMPORT_SYNTH or rel == Path("cli.py"):
            continue
        for name, line, _top in _imports(f):
            if _is(name, "irtrepro.synth"):
                out.setdefault((f, line), f"{_rel(f)}:{line}: imports {name}")
    return list(out.values())


def test_domain_packages_never_import_report_or_matplotlib():
    bad = domain_violations()
    assert not bad, "domain packages reach back up the flow:\n" + "\n".join(bad)


def test_only_generator_report_and_commands_import_synth():
    bad = synth_violations()
    assert not bad, "irtrepro.synth imported outside synth/, report/, commands/, cli.py:\n" + \
        "\n".join(bad)


def test_the_walk_finds_planted_imports(tmp_path, monkeypatch):
    """The checks see a lazy report import, a module-level matplotlib import and synth."""
    fake = tmp_path / "irtrepro"
    (fake / "vision").mkdir(parents=True)
    (fake / "stats").mkdir()
    (fake / "vision" / "a.py").write_text(
        "import numpy\n\ndef f():\n    from irtrepro.report.part import ReportPart\n"
        "    import matplotlib.pyplot as plt\n")
    (fake / "stats" / "b.py").write_text("import matplotlib\nfrom irtrepro import synth\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", fake)
    dom = domain_violations()
    assert any("vision/a.py:4: imports irtrepro.report.part" in d for d in dom)
    assert not any("a.py:5" in d for d in dom)  # matplotlib inside a function is fine
    assert any("stats/b.py:1: imports matplotlib at module level" in d for d in dom)
    assert any("stats/b.py:2: imports irtrepro.synth" in d for d in synth_violations())
