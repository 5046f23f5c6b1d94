"""Every validation message, proven by a broken flow under tests/flows/broken/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flows import FlowValidationError, load_flow, validate_paths

ROOT = Path(__file__).resolve().parents[3]
BROKEN = ROOT / "tests" / "flows" / "broken"
FILES = sorted(BROKEN.glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    """Expected messages; ``{here}`` stands for the folder the broken flows sit in on this clone."""
    prefix = "# expect: "
    return [
        line[len(prefix) :].replace("{here}", str(BROKEN))
        for line in path.read_text().splitlines()
        if line.startswith(prefix)
    ]


def test_there_is_a_broken_flow_for_each_kind_of_problem() -> None:
    messages = "\n".join(e for f in FILES for e in expectations(f))
    for needle in (
        "YAML syntax error",
        "unknown key",
        "did you mean",
        "unknown step",
        "is unreachable",
        "has no way out",
        "loop forever",
        "missing prompt",
        "missing phrases",
        "duplicate DTMF key",
        "duplicate phrase",
        "is never defined",
        "is not declared in variables",
        "invalid duration",
        "unknown slot type",
        "unknown time zone",
        "includes itself",
        "not found",
    ):
        assert needle in messages, needle


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_broken_flow_reports_exactly_its_problems(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} lists no expected problems"
    got = [
        f"{Path(p.file).resolve().relative_to(BROKEN)}:{p.line}:{p.col}: {p.message}"
        for p in validate_paths([path])
    ]
    assert got == expected


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_load_flow_raises_with_every_problem(path: Path) -> None:
    with pytest.raises(FlowValidationError) as info:
        load_flow(path)
    assert len(info.value.problems) == len(expectations(path))
    assert str(info.value).count("\n") == len(info.value.problems)


def test_cli_validate_prints_file_line_col_for_every_problem_and_fails() -> None:
    proc = subprocess.run(
        [sys.executable, "run_ivr.py", "flows", "validate", str(BROKEN)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert len(lines) == sum(len(expectations(f)) for f in FILES)
    for line in lines:
        file, row, col, message = line.split(":", 3)
        assert file.endswith(".yaml") and row.isdigit() and col.isdigit() and message.startswith(" ")


def test_cli_validate_accepts_the_shipped_flows() -> None:
    proc = subprocess.run(
        [sys.executable, "run_ivr.py", "flows", "validate", "flows/library"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout == ""
