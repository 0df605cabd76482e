"""`make bench-check`: every benchmark figure the README or docs/benchmarks.md quotes names a
JSON key its script still prints.

    python bench/check_keys.py [FILE.md ...]

A script declares the keys of its last line in module constants named `JSON_KEYS...` (tuples
of strings) and prints it through `bench.common.emit`, which refuses a line whose keys differ
from the declaration; so a key that is declared is printed. This check reads the declarations
from the scripts' source (nothing is imported or run) and the Markdown tables of the documents:
a table with a `command` column that names `bench/<script>.py` must have a `JSON key` column,
and every backticked key in it (`ratio`, or `aktina.jobs_per_s` for a nested one: its first
part is checked) must be declared by that script. A command cell reading "same" means the row
above's script. Exit status 1 with one line per problem.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "docs/benchmarks.md")
SCRIPT = re.compile(r"bench/([a-z_]+)\.py")
KEY = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)`")


def declared_keys(source: str) -> set[str]:
    """The strings in the script's module-level `JSON_KEYS...` tuples (`*NAME` entries are
    resolved against other module-level tuples of strings)."""
    tuples: dict[str, list[str]] = {}
    declared: set[str] = set()
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if not isinstance(target, ast.Name) or not isinstance(node.value, ast.Tuple):
            continue
        values: list[str] = []
        for element in node.value.elts:
            if isinstance(element, ast.Constant) and isinstance(element.value, str):
                values.append(element.value)
            elif isinstance(element, ast.Starred) and isinstance(element.value, ast.Name):
                values += tuples.get(element.value.id, [])
        tuples[target.id] = values
        if target.id.startswith("JSON_KEYS"):
            declared.update(values)
    return declared


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def quoted_keys(text: str) -> tuple[list[tuple[int, str, str]], list[str]]:
    """(line number, script, key) for every key a table quotes, and the problems found."""
    quoted: list[tuple[int, str, str]] = []
    problems: list[str] = []
    header: list[str] | None = None
    last_script: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.lstrip().startswith("|"):
            header, last_script = None, None
            continue
        cells = _cells(line)
        if header is None:
            header = [cell.lower() for cell in cells]
            continue
        if all(set(cell) <= set("-: ") for cell in cells):
            continue  # the separator row
        command = next((i for i, name in enumerate(header) if name.startswith("command")), None)
        if command is None or command >= len(cells):
            continue
        scripts = SCRIPT.findall(cells[command])
        if not scripts and cells[command].lower().startswith("same") and last_script:
            scripts = [last_script]  # "same": the command of the row above
        if not scripts:
            last_script = None
            continue
        last_script = scripts[0]
        key_column = next((i for i, name in enumerate(header) if name.startswith("json key")), None)
        if key_column is None or key_column >= len(cells):
            problems.append(f"line {number}: a figure of bench/{scripts[0]}.py names no JSON key")
            continue
        keys = KEY.findall(cells[key_column])
        if not keys:
            problems.append(f"line {number}: a figure of bench/{scripts[0]}.py names no JSON key")
        quoted += [(number, scripts[0], key) for key in keys]
    return quoted, problems


def check(root: Path = ROOT, documents: tuple[str, ...] = DOCUMENTS) -> list[str]:
    problems: list[str] = []
    declarations: dict[str, set[str]] = {}
    for name in documents:
        path = root / name
        quoted, found = quoted_keys(path.read_text())
        problems += [f"{name} {problem}" for problem in found]
        for number, script, key in quoted:
            source = root / "bench" / f"{script}.py"
            if not source.exists():
                problems.append(f"{name} line {number}: bench/{script}.py does not exist")
                continue
            if script not in declarations:
                declarations[script] = declared_keys(source.read_text())
            if key.split(".")[0] not in declarations[script]:
                problems.append(
                    f"{name} line {number}: bench/{script}.py prints no JSON key {key!r}"
                )
    return problems


def main(argv: list[str]) -> int:
    problems = check(documents=tuple(argv) or DOCUMENTS)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("bench-check: every quoted JSON key is printed by its script")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
