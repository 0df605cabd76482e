"""The orders app's import rules (issue 10 §6): jobs are reached through receivers only."""

import ast
from pathlib import Path

import orders

ROOT = Path(orders.__file__).parent
ALLOWED = {ROOT / "receivers.py", ROOT / "jobs.py"}


def _imports_jobs(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.module == "orders.jobs" or (
                node.module == "orders" and any(a.name == "jobs" for a in node.names)
            ):
                return True
        elif isinstance(node, ast.Import) and any(a.name == "orders.jobs" for a in node.names):
            return True
    return False


def test_only_the_receivers_import_the_jobs():
    offenders = [
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*.py")
        if p not in ALLOWED and "migrations" not in p.parts and _imports_jobs(p)
    ]
    assert offenders == []


def test_no_service_module_is_longer_than_a_screenful_of_concerns():
    services = ROOT / "services"
    assert services.is_dir(), "orders/services.py is split by concern into orders/services/"
    assert {p.stem for p in services.glob("*.py")} >= {
        "placement",
        "approval",
        "fulfilment",
        "stock",
    }
