"""``flows test``: conversation test files, caller turns against the bot lines expected.

A test file names a flow and lists cases; each case is a list of ``bot:`` and ``caller:``
turns plus the expected final outcome and variables. An expected bot line matches when it
appears (case-insensitively) inside the actual line, and there must be as many lines as
expected. A failing case shows a unified diff of the whole conversation.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from flows.errors import ConversationTestError, FlowValidationError
from flows.loader import load_flow
from flows.model import Flow
from flows.schema import Reader
from flows.simulator import Simulator
from flows.yaml_source import MarkedDict, MarkedList, read_marked

FILE_KEYS = ("flow", "now", "variables", "cases")
CASE_KEYS = ("name", "now", "variables", "transfer", "turns", "outcome", "expect_variables")


@dataclass
class CaseResult:
    file: str
    name: str
    passed: bool
    failures: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)

    def report(self) -> str:
        head = f"{'PASS' if self.passed else 'FAIL'} {self.file} :: {self.name}"
        return "\n".join([head, *("  " + f for f in self.failures), *("  " + d for d in self.diff)])


def discover(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path])
    return files


def run_file(path: Path) -> list[CaseResult]:
    """Run every case in a test file; a malformed file raises :class:`ConversationTestError`."""
    data, problems = read_marked(path, str(path), "test file", "a mapping with flow: and cases:")
    if problems or data is None:
        raise ConversationTestError("\n".join(map(str, problems)))
    reader = Reader(str(path))
    reader.check_keys(data, FILE_KEYS, "test file")
    flow_name = reader.text(data, "flow", "test file")
    if not flow_name:
        reader.report(data.pos, "test file: missing flow (path of the flow file, relative to this file)")
    cases = data.get("cases")
    if not isinstance(cases, MarkedList) or not cases:
        reader.report(data.where_value("cases") if "cases" in data else data.pos, "test file: missing cases")
        cases = MarkedList()
    if reader.problems:
        raise ConversationTestError("\n".join(map(str, reader.problems)))
    try:
        flow = load_flow(path.parent / flow_name)
    except FlowValidationError as exc:
        line, col = data.where_value("flow")
        raise ConversationTestError(f"{path}:{line}:{col}: flow '{flow_name}' is invalid:\n{exc}") from exc
    default_now = _time(reader, data, "now", None)
    base_vars: dict[str, Any] = dict(reader.mapping(data, "variables", "test file") or {})
    results = [
        _run_case(reader, flow, case, cases.where(i), default_now=default_now, variables=dict(base_vars))
        for i, case in enumerate(cases)
    ]
    if reader.problems:
        raise ConversationTestError("\n".join(map(str, reader.problems)))
    return results


def _time(reader: Reader, data: MarkedDict, key: str, default: datetime | None) -> datetime | None:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, 12, 0)
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        reader.report(data.where_value(key), f"{key}: invalid time '{value}' (use 2026-03-02T10:00:00+00:00)")
        return default


def _run_case(
    reader: Reader,
    flow: Flow,
    case: Any,
    pos: tuple[int, int],
    *,
    default_now: datetime | None,
    variables: dict[str, Any],
) -> CaseResult:
    if not isinstance(case, MarkedDict):
        reader.report(pos, "cases: each case must be a mapping with name and turns")
        return CaseResult(reader.file, "?", False)
    reader.check_keys(case, CASE_KEYS, "case")
    name = reader.text(case, "name", "case", f"case at line {pos[0]}")
    for key, value in (reader.mapping(case, "variables", "case") or {}).items():
        variables[key] = value
    transfer = reader.choice(case, "transfer", "case", ("answered", "failed"), "answered")
    sim = Simulator(flow, variables, _time(reader, case, "now", default_now), transfer == "answered")
    segments = _segments(reader, case)
    result = CaseResult(reader.file, name, True)
    expected_view: list[str] = []
    actual_view: list[str] = []
    actual = sim.start()
    for caller, confidence, expected in segments:
        if caller is not None:
            expected_view.append(f"caller: {caller}")
            actual_view.append(f"caller: {caller}")
            actual = sim.turn(caller, confidence) if not sim.finished else ["(the call had already ended)"]
        if _lines_match(expected, actual):
            expected_view += [f"bot: {line}" for line in actual]
            actual_view += [f"bot: {line}" for line in actual]
        else:
            result.passed = False
            expected_view += [f"bot: {line}" for line in expected]
            actual_view += [f"bot: {line}" for line in actual]
    if "outcome" in case:
        want = reader.text(case, "outcome", "case")
        if sim.session.outcome != want:
            result.passed = False
            result.failures.append(f"outcome: expected '{want}', got '{sim.session.outcome}'")
    for key, want in (reader.mapping(case, "expect_variables", "case") or {}).items():
        got = _lookup(sim.session.variables, key)
        if got != want and not (isinstance(want, str) and str(got) == want):
            result.passed = False
            result.failures.append(f"variable {key}: expected {want!r}, got {got!r}")
    if not result.passed:
        result.diff = list(
            difflib.unified_diff(expected_view, actual_view, "expected", "actual", lineterm="", n=2)
        )
    return result


def _segments(reader: Reader, case: MarkedDict) -> list[tuple[str | None, float, list[str]]]:
    """``(caller turn or None for the greeting, confidence, expected bot lines)`` in order."""
    turns = case.get("turns")
    segments: list[tuple[str | None, float, list[str]]] = [(None, 1.0, [])]
    if not isinstance(turns, MarkedList):
        reader.report(case.where_value("turns") if "turns" in case else case.pos, "case: missing turns")
        return segments
    for index, turn in enumerate(turns):
        if not isinstance(turn, MarkedDict) or not ({"bot", "caller"} & turn.keys()):
            reader.report(turns.where(index), "turns: each turn is {bot: LINE(S)} or {caller: TEXT}")
            continue
        reader.check_keys(turn, ("bot", "caller", "confidence"), "turn")
        if "caller" in turn:
            confidence = reader.fraction(turn, "confidence", "turn", 0.9)
            segments.append((reader.text(turn, "caller", "turn"), confidence, []))
        if "bot" in turn:
            segments[-1][2].extend(reader.texts(turn, "bot", "turn"))
    return segments


def _lines_match(expected: list[str], actual: list[str]) -> bool:
    return len(expected) == len(actual) and all(
        " ".join(e.lower().split()) in " ".join(a.lower().split())
        for e, a in zip(expected, actual, strict=True)
    )


def _lookup(variables: dict[str, Any], dotted: str) -> Any:
    value: Any = variables
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
