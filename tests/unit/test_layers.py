"""Imports point down the package table in docs/architecture.md, never up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "skyroute"

# package -> skyroute packages it may import (itself always allowed)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "wire": {"core"},
    "transport": {"core"},
    "providers": {"core", "wire", "transport"},
    "routing": {"core", "providers"},
    "governance": {"core", "store"},
    "store": {"core"},
    "telemetry": {"core"},
    "emulators": {"core", "wire", "transport"},
    "api": {
        "core",
        "wire",
        "transport",
        "providers",
        "routing",
        "governance",
        "store",
        "telemetry",
    },
    "server": {
        "core",
        "wire",
        "transport",
        "providers",
        "routing",
        "governance",
        "store",
        "telemetry",
        "api",
        "emulators",
    },
}


# Pure modules a lower layer may borrow: the emulators verify SigV4 with the signer itself.
EXCEPTIONS: dict[str, set[str]] = {"emulators": {"skyroute.providers.sigv4"}}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


def _imported_packages(path: Path, exceptions: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if name in exceptions:
                continue
            parts = name.split(".")
            if parts[0] == "skyroute" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_only_lower_layers(path: Path) -> None:
    package = path.relative_to(PACKAGE).parts[0]
    assert package in ALLOWED, f"package {package!r} is missing from the layer table"
    imported = _imported_packages(path, EXCEPTIONS.get(package, set()))
    forbidden = imported - ALLOWED[package] - {package}
    assert not forbidden, f"{path.relative_to(PACKAGE)} imports {sorted(forbidden)}"


def test_routing_depends_on_providers_only_through_nothing_concrete() -> None:
    for path in (PACKAGE / "routing").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "providers.openai" not in text and "providers.azure" not in text
