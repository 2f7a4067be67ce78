"""Imports point down: bot → handlers → storage; handlers never touch a platform."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_PACKAGES = {"aiogram", "aiohttp", "apscheduler", "matplotlib", "playwright", "redis"}


def imported_roots(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("storage", {"bot", "handlers"} | PLATFORM_PACKAGES),
        ("handlers", {"bot"} | PLATFORM_PACKAGES),
    ],
)
def test_layers_import_only_downwards(package: str, forbidden: set[str]) -> None:
    offending = {
        path: sorted(names & forbidden)
        for path, names in imported_roots(package).items()
        if names & forbidden
    }
    assert offending == {}
