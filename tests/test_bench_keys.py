"""`make bench-check`: the figures the README and docs/benchmarks.md quote are keys their
scripts print. Reads sources only; no benchmark runs."""

from __future__ import annotations

import pytest

from bench.check_keys import ROOT, check, declared_keys
from bench.common import emit

TABLE = """\
| what | figures | JSON key | command |
|---|---|---|---|
| drain | 1.0 | `{key}` | `python bench/sample.py` |
"""


def _project(tmp_path, *, key: str, table: str = TABLE):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "sample.py").write_text(
        'PARTS = ("nested",)\nJSON_KEYS = ("ratio", *PARTS)\nJSON_KEYS_OTHER = ("other",)\n'
    )
    (tmp_path / "doc.md").write_text(table.format(key=key))
    return tmp_path


def test_the_documents_quote_only_keys_their_scripts_print():
    assert check() == []


def test_every_benchmark_the_documents_cite_declares_keys():
    for script in ("jobs", "workflow", "peers", "perform", "horizon", "analytics", "api", "ml"):
        assert declared_keys((ROOT / "bench" / f"{script}.py").read_text()), script


@pytest.mark.parametrize("key", ["ratio", "other", "nested.jobs_per_s"])
def test_a_declared_key_passes(tmp_path, key):
    assert check(_project(tmp_path, key=key), ("doc.md",)) == []


def test_a_key_the_script_no_longer_prints_fails(tmp_path):
    problems = check(_project(tmp_path, key="jobs_per_s"), ("doc.md",))
    assert problems == ["doc.md line 3: bench/sample.py prints no JSON key 'jobs_per_s'"]


def test_a_row_whose_command_is_same_is_checked_against_the_row_above(tmp_path):
    table = TABLE + "| more | 2.0 | `gone` | same |\n"
    problems = check(_project(tmp_path, key="ratio", table=table), ("doc.md",))
    assert problems == ["doc.md line 4: bench/sample.py prints no JSON key 'gone'"]


def test_a_figure_of_a_script_with_no_key_column_fails(tmp_path):
    table = "| what | figures | command |\n|---|---|---|\n| drain | 1.0 | `bench/sample.py` |\n"
    problems = check(_project(tmp_path, key="", table=table), ("doc.md",))
    assert problems == ["doc.md line 3: a figure of bench/sample.py names no JSON key"]


def test_emit_refuses_a_line_whose_keys_drifted_from_the_declaration(capsys):
    with pytest.raises(RuntimeError, match="extra \\['b'\\], missing \\['c'\\]"):
        emit({"a": 1, "b": 2}, ("a", "c"))
    emit({"a": 1}, ("a",))
    assert capsys.readouterr().out == '{"a": 1}\n'
