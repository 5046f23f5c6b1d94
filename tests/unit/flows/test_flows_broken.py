"""Every validation message, proven by a broken flow under tests/flows/broken/.

``run_ivr.py flows validate`` over the same files is tested in tests/component/flows/.
"""

from __future__ import annotations

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
        "no step sets the outcome",
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
