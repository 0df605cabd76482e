"""Layer rules a reader relies on (STYLE.md): reads never import writes, and receivers are
wired one way — a `receivers.py` whose `connect()` the app's `ready()` calls."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ["orders", "analytics", "ml", "aktina/core", "aktina/notifications"]


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


@pytest.mark.parametrize("app", ["orders", "analytics", "ml"])
def test_selectors_do_not_import_services(app):
    package = app.replace("/", ".")
    selectors = ROOT / app / "selectors.py"
    writes = {n for n in _imported(selectors) if n.startswith(f"{package}.services")}
    assert writes == set()


def test_receivers_are_connected_in_ready_not_by_decorators():
    decorated = [
        str(path.relative_to(ROOT))
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "django.dispatch.receiver" in _imported(path)
    ]
    assert decorated == []
    for app in ["orders", "analytics", "aktina/notifications"]:
        ready = (ROOT / app / "apps.py").read_text()
        assert "receivers.connect()" in ready, app
