"""``sync_core`` is pure: no module of it imports the Dagster shell or Dagster
(docs: architecture, "Layers"). Read with ``ast``, nothing is imported."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "sync_core"
FORBIDDEN = {"sync_assets", "resources", "sensors", "schedules", "dagster"}


def imported(tree: ast.AST) -> set[str]:
    """Top-level packages a module imports, at any depth (inside functions too)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            if node.args and isinstance(node.args[0], ast.Constant):
                out.add(str(node.args[0].value).split(".")[0])
    return out


def test_sync_core_never_imports_the_shell_or_dagster():
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) > 50  # the walk found the package
    offenders = {
        str(p.relative_to(CORE.parent)): sorted(imported(ast.parse(p.read_text())) & FORBIDDEN)
        for p in modules
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_walk_sees_a_shell_import_inside_a_function():
    tree = ast.parse("def f():\n    from sync_assets.definitions import SETTINGS\n")
    assert imported(tree) & FORBIDDEN == {"sync_assets"}
