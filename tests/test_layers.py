"""Arrows point down: each package imports only the packages listed before it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = ("registry", "engine", "journal", "gateway_bridge", "api", "tools", "model_service")
#: tools modules that drive model-service as an application (the demo runs it, the bench times it),
#: as they drive shards; no other module below it may import model_service.
ORCHESTRATORS = {"tools/sim/demo_model.py", "tools/bench/model.py"}
ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    """Top-level packages of ours that a module imports (anywhere in it, lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
        found.update(n.split(".")[0] for n in names if n.split(".")[0] in PACKAGES)
    return found


def test_each_package_imports_only_packages_below_it() -> None:
    """Arrows point down: registry → engine → journal → gateway_bridge → api → tools → model_service."""
    wrong = []
    for rank, pkg in enumerate(PACKAGES):
        allowed = set(PACKAGES[:rank + 1])
        for path in sorted((ROOT / pkg).rglob("*.py")):
            extra = {"model_service"} if str(path.relative_to(ROOT)) in ORCHESTRATORS else set()
            bad = _imports(path) - allowed - extra
            if bad:
                wrong.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not wrong, "\n".join(wrong)
