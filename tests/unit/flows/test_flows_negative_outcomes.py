"""``negative_outcomes``: declared, checked, and the warnings for answers that reach one unconfirmed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from flows import FlowRepository, load_flow, validate_paths
from flows.errors import Problem

ROOT = Path(__file__).resolve().parents[3]
LIBRARY = ROOT / "flows" / "library"
WARNINGS = ROOT / "tests" / "flows" / "warnings"
EXPECT = "# expect: "

BASE = """
flow: {name: t}
globals: {agent: false, goodbye: false}
NEGATIVE
variables: {mode: ""}
steps:
  start:
    branch:
      - if: mode == 'check'
        goto: check
      - if: mode == 'reason'
        goto: reason
      - else: keep
  keep:
    ask: Keep your order?
    slot: yes_no
    CONFIRM
    yes: kept
    no: NO_TARGET
  check:
    branch:
      - if: mode == 'check'
        goto: cancel
      - else: cancel
  reason:
    ask: Why?
    slot: text
    next: cancel
  cancel:
    outcome: cancelled
    say: Cancelled.
    next: bye
  bye:
    say: Bye.
    hangup: true
  kept:
    say: Thanks.
    hangup: kept
"""


def problems(tmp_path: Path, negative: str, confirm: str, no_target: str = "cancel") -> list[str]:
    """Every problem (warnings too) of BASE with these parts, as ``LINE:COL: message``."""
    text = BASE.replace("NEGATIVE", negative).replace("CONFIRM", confirm).replace("NO_TARGET", no_target)
    path = tmp_path / "t.yaml"
    path.write_text(text)
    found = validate_paths([path], warnings=True)
    return [f"{p.line}:{p.col}: {'warning: ' if p.is_warning else ''}{p.message}" for p in found]


@pytest.mark.parametrize(
    ("no_target", "via"),
    [("cancel", "cancel"), ("check", "cancel")],
    ids=["directly", "through-a-branch"],
)
def test_confirm_never_before_a_negative_outcome_is_a_located_warning(
    tmp_path: Path, no_target: str, via: str
) -> None:
    got = problems(tmp_path, "negative_outcomes: [cancelled]", "confirm: never", no_target)
    assert got == [
        f"17:14: warning: steps.keep.confirm: never, but the answer 'no' leads to the negative outcome "
        f"'cancelled' (step '{via}') on one unconfirmed answer; use confirm: negative (double-check "
        "only that answer) or auto"
    ]


@pytest.mark.parametrize("confirm", ["confirm: negative", "confirm: auto", "confirm: always", "help: x"])
def test_other_confirm_modes_double_check_so_no_warning(tmp_path: Path, confirm: str) -> None:
    assert problems(tmp_path, "negative_outcomes: [cancelled]", confirm) == []


def test_a_question_on_the_way_is_a_check_of_its_own(tmp_path: Path) -> None:
    assert problems(tmp_path, "negative_outcomes: [cancelled]", "confirm: never", "reason") == []


def test_an_outcome_that_is_not_declared_negative_needs_no_check(tmp_path: Path) -> None:
    assert problems(tmp_path, "negative_outcomes: []", "confirm: never") == []


def test_without_a_declaration_a_negative_looking_outcome_is_a_warning(tmp_path: Path) -> None:
    got = problems(tmp_path, "", "confirm: never")
    assert got == [
        "29:3: warning: steps.cancel: outcome 'cancelled' looks negative, but the flow declares no "
        "negative_outcomes; add negative_outcomes: [cancelled] so that answers leading to it are "
        "double-checked (or negative_outcomes: [] if it is not)"
    ]


def test_a_declared_outcome_no_step_sets_is_an_error(tmp_path: Path) -> None:
    got = problems(tmp_path, "negative_outcomes: cancelld", "confirm: negative")
    assert got == ["4:20: negative_outcomes: no step sets the outcome 'cancelld' (did you mean 'cancelled'?)"]


def test_warnings_do_not_stop_a_flow_loading(tmp_path: Path) -> None:
    problems(tmp_path, "negative_outcomes: [cancelled]", "confirm: never")
    path = tmp_path / "t.yaml"
    assert validate_paths([path]) == []  # errors only, as before
    flow = load_flow(path)
    assert [w.severity for w in flow.warnings] == ["warning"]
    assert str(flow.warnings[0]).startswith(f"{path}:17:14: warning: steps.keep.confirm: never")


def test_a_flow_in_service_logs_its_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    problems(tmp_path, "negative_outcomes: [cancelled]", "confirm: never")
    with caplog.at_level(logging.WARNING, logger="ivr.flows"):
        FlowRepository(tmp_path / "t.yaml")
    [record] = [r for r in caplog.records if "flow_warning" in r.getMessage()]
    assert "steps.keep.confirm: never" in str(vars(record))


@pytest.mark.parametrize("path", sorted(WARNINGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_each_warning_example_reports_exactly_its_warnings(path: Path) -> None:
    expected = [line[len(EXPECT) :] for line in path.read_text().splitlines() if line.startswith(EXPECT)]
    got = [
        f"{Path(p.file).name}:{p.line}:{p.col}: {p.severity}: {p.message}"
        for p in validate_paths([path], warnings=True)
    ]
    assert expected and got == expected
    assert load_flow(path).warnings


def test_the_shipped_flows_declare_their_negative_outcomes_and_have_no_warning() -> None:
    assert validate_paths([LIBRARY], warnings=True) == []
    declared = {path.stem: load_flow(path).negative_outcomes for path in sorted(LIBRARY.glob("*.yaml"))}
    assert declared == {
        "compliance_callback": ("declined", "wrong_person"),
        "demo": (),
        "hotline": (),
        "retention": ("declined", "do_not_call", "wrong_person"),
    }


def test_the_compliance_steps_that_decline() -> None:
    flow = load_flow(LIBRARY / "compliance_callback.yaml")
    assert flow.negative_steps == {"purchase_disputed", "declined", "wrong_person"}
    for step in ("confirm_purchase", "confirm_person"):  # wrong_person ends the contact: issue 14
        ask = flow.steps[step].ask
        assert ask is not None and ask.confirm == "negative"


def test_a_warning_prints_with_its_label() -> None:
    assert str(Problem("f.yaml", 3, 4, "risky", "warning")) == "f.yaml:3:4: warning: risky"
    assert str(Problem("f.yaml", 3, 4, "broken")) == "f.yaml:3:4: broken"
