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


# The services are split by concern so each reads in one sitting; 250 lines is the budget for
# one concern (the largest, fulfilment, is under 200).
SERVICE_MODULE_MAX_LINES = 250
# The job layer's front door: what domain code may import from `aktina.jobs`.
JOB_LAYER_PUBLIC = {
    "aktina.jobs",
    "aktina.jobs.models",
    "aktina.jobs.tasks_api",
    "aktina.jobs.exceptions",
}


def test_no_service_module_is_longer_than_one_concern():
    lengths = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "services").glob("*.py")}
    assert {"placement.py", "approval.py", "fulfilment.py", "stock.py"} <= lengths.keys()
    too_long = {name: n for name, n in lengths.items() if n > SERVICE_MODULE_MAX_LINES}
    assert too_long == {}


def _job_layer_imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            if node.module == "aktina.jobs":
                modules |= {f"aktina.jobs.{a.name}" for a in node.names if a.name in _SUBMODULES}
        elif isinstance(node, ast.Import):
            modules |= {a.name for a in node.names}
    return {m for m in modules if m == "aktina.jobs" or m.startswith("aktina.jobs.")}


_SUBMODULES = {p.stem for p in (Path(orders.__file__).parents[1] / "aktina" / "jobs").glob("*.py")}


def test_orders_reaches_the_job_layer_through_its_public_api_only():
    offenders = {
        str(p.relative_to(ROOT)): sorted(imported - JOB_LAYER_PUBLIC)
        for p in ROOT.rglob("*.py")
        if "migrations" not in p.parts and (imported := _job_layer_imports(p)) - JOB_LAYER_PUBLIC
    }
    assert offenders == {}
