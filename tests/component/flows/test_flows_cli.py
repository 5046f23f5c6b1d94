"""``run_ivr.py chat`` and ``run_ivr.py flows validate|test|graph`` as an admin runs them, each in a
subprocess: exit codes, what goes to stdout and stderr, ``FILE:LINE:COL`` lines.

The functions behind them are unit-tested in tests/unit/flows/ (test_flows_tools.py,
test_flows_broken.py, test_flows_hostile_files.py, test_flows_negative_outcomes.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.component

ROOT = Path(__file__).resolve().parents[3]
HOTLINE = ROOT / "flows" / "library" / "hotline.yaml"
BROKEN = ROOT / "tests" / "flows" / "broken"
WARNINGS = ROOT / "tests" / "flows" / "warnings"
EXPECT = "# expect: "


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "run_ivr.py", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def expected_lines(folder: Path) -> list[str]:
    """Every ``# expect:`` line of the flow files in ``folder``, as ``flows validate`` prints it."""
    return [
        f"{folder.relative_to(ROOT)}/{line[len(EXPECT) :].replace('{here}', str(folder))}"
        for path in sorted(folder.glob("*.yaml"))
        for line in path.read_text().splitlines()
        if line.startswith(EXPECT)
    ]


def test_chat_reads_turns_from_a_pipe() -> None:
    proc = run(
        "chat",
        "flows/library/compliance_callback.yaml",
        "--contact",
        '{"first_name": "Maria", "last_name": "Lopez"}',
        stdin="no\nno\n",  # wrong_person is negative: asked once more (issue 14)
    )
    assert proc.returncode == 0, proc.stderr
    assert "bot: Am I speaking with Maria Lopez?" in proc.stdout
    assert proc.stdout.rstrip().endswith("[outcome wrong_person]")


def test_flows_test_passes_for_every_shipped_flow() -> None:
    proc = run("flows", "test", "flows/library/tests")
    assert proc.returncode == 0, proc.stdout
    assert "FAIL" not in proc.stdout and proc.stdout.count("PASS") >= 40


def test_flows_test_shows_a_diff_and_fails(tmp_path: Path) -> None:
    test = tmp_path / "t.yaml"
    test.write_text(f"""flow: {HOTLINE}
now: 2026-03-02T10:00:00+00:00
cases:
  - name: wrong expectation
    turns:
      - bot: [Welcome to Acme Bank, How can I help you today?]
      - caller: opening hours
      - bot: [We are open all night, anything else]
""")
    proc = run("flows", "test", str(test))
    assert proc.returncode == 1 and "FAIL" in proc.stdout and "--- expected" in proc.stdout


def test_flows_test_reports_a_malformed_test_file(tmp_path: Path) -> None:
    test = tmp_path / "bad.yaml"
    test.write_text(f"flow: {HOTLINE}\ncases:\n  - name: x\n    turnz: []\n")
    proc = run("flows", "test", str(test))
    assert proc.returncode == 1
    assert f"{test}:4:5: case: unknown key 'turnz' (did you mean 'turns'?)" in proc.stdout


def test_graph_is_mermaid() -> None:
    proc = run("flows", "graph", "flows/library/retention.yaml")
    assert proc.returncode == 0
    assert proc.stdout.startswith("flowchart TD\n")
    assert 'globals -.->|"do_not_call / 9"| s_do_not_call' in proc.stdout


def test_graph_of_an_invalid_flow_fails_with_its_problems() -> None:
    proc = run("flows", "graph", "tests/flows/broken/duplicates.yaml")
    assert proc.returncode == 1 and "duplicate DTMF key '1'" in proc.stderr


def test_validate_prints_file_line_col_for_every_problem_and_fails() -> None:
    proc = run("flows", "validate", str(BROKEN.relative_to(ROOT)))
    assert proc.returncode == 1
    assert sorted(proc.stdout.splitlines()) == sorted(expected_lines(BROKEN))
    for line in proc.stdout.splitlines():
        file, row, col, message = line.split(":", 3)
        assert file.endswith(".yaml") and row.isdigit() and col.isdigit() and message.startswith(" ")


def test_validate_accepts_the_shipped_flows_without_a_warning() -> None:
    proc = run("flows", "validate", "--strict", "flows/library")
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout == ""
    assert proc.stderr.strip() == "ok: 1 path(s) valid"


def test_validate_prints_warnings_but_passes_unless_strict() -> None:
    proc = run("flows", "validate", str(WARNINGS.relative_to(ROOT)))
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.splitlines() == expected_lines(WARNINGS)
    assert all(": warning: " in line for line in proc.stdout.splitlines())
    assert proc.stderr.strip() == "ok: 1 path(s) valid, 2 warning(s)"
    strict = run("flows", "validate", "--strict", str(WARNINGS.relative_to(ROOT)))
    assert strict.returncode == 1 and strict.stdout == proc.stdout and "ok:" not in strict.stderr


def test_validate_fails_on_empty_null_and_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "tilde.yaml").write_text("~\n")
    folder = tmp_path / "nothing"
    folder.mkdir()
    proc = run("flows", "validate", str(tmp_path / "empty.yaml"), str(tmp_path / "tilde.yaml"), str(folder))
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr and "ok:" not in proc.stderr
    assert proc.stdout.splitlines() == [
        f"{tmp_path}/empty.yaml:1:1: flow file is empty: expected a mapping with flow: and steps:",
        f"{folder}:1:1: folder holds no flow files (*.yaml, *.yml)",
        f"{tmp_path}/tilde.yaml:1:1: flow file holds only null: expected a mapping with flow: and steps:",
    ]
