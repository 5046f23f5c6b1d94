"""Templates render under size and time limits; a template past them ends the call politely."""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows import FlowSession, HangUp, Listen, Play, Recognition, SetOutcome, load_flow, validate_paths
from flows.errors import TemplateLimitError
from flows.session import FLOW_ERROR_OUTCOME, FLOW_ERROR_PROMPT
from flows.template_limits import MAX_PROMPT_CHARS, TIME_BUDGET_S
from flows.templates import evaluate, render, value_of

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
MB = 1 << 20
BIG = "{% set big = 'x' * 90000 %}"

HOSTILE = [
    "{{ 'a' * 4000000000 }}",
    "{{ 4000000000 * 'a' }}",
    "{{ ['a'] * 4000000000 }}",
    "{{ 'ab' * 60000 }}",
    "{{ 'a'|center(4000000000) }}",
    "{{ 'a'.center(4000000000) }}",
    "{{ 'a'.zfill(4000000000) }}",
    "{{ 'a'.ljust(99999) ~ 'b'.ljust(99999) }}",
    "{{ 'a'.ljust(99999) + 'b'.ljust(99999) }}",
    "{{ 10 ** 100000 }}",
    "{{ (10 ** 1000) * (10 ** 1000) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{{ '%s' | format('x' * 99999 ~ 'y' * 99999) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:>{w}}'.format(1, w=999999999) }}",
    "{{ ('a\n' * 40000) | indent(99999) }}",
    "{{ ('a' * 50000) | replace('a', 'bbbbbbbb') }}",
    "{{ ('a' * 50000).replace('', 'bbbbbbbb') }}",
    "{{ ('a' * 90000) | join('x' * 90000) }}",
    "{{ 'x'.join('y' * 90000) * 2 }}",
    "{{ 'ab' | wordwrap(1, wrapstring='x' * 99999) }}",
    "{{ (1).to_bytes(999999999, 'big') }}",
    "{{ [range(100000) | list] * 100000 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% for c in 'x' * 99999 %}{% for d in 'x' * 99999 %}{% endfor %}{% endfor %}",
    "{{ 'x' * (MAX + 1) }}".replace("MAX", str(MAX_PROMPT_CHARS)),
    "{{ ('{0}' * 25000).format('x' * 90000) }}",
    "{{ ('{a}' * 20000).format_map({'a': 'x' * 90000}) }}",
    "{{ ('%(a)s' * 20000) % {'a': 'x' * 90000} }}",
    BIG + "{% set x %}{% for i in range(100000) %}{{ big }}{% endfor %}{% endset %}{{ x | length }}",
    BIG + "{% macro m() %}{% for i in range(100000) %}{{ big }}{% endfor %}{% endmacro %}{{ m() | length }}",
    BIG + "{% filter upper %}{% for i in range(100000) %}{{ big }}{% endfor %}{% endfilter %}",
    BIG + "{{ big.split('x') }}",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_a_hostile_template_raises_quickly_without_allocating(template: str) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(TemplateLimitError):
            render(template, {})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < TIME_BUDGET_S * 4
    assert peak < 64 * MB


@pytest.mark.parametrize(
    "expression",
    ["'a' * 4000000000", "10 ** 100000", "range(100000) | list", "'a'.center(10 ** 12)"],
)
def test_a_hostile_expression_raises_too(expression: str) -> None:
    with pytest.raises(TemplateLimitError):
        evaluate(expression, {})
    with pytest.raises(TemplateLimitError):
        value_of("{{ " + expression + " }}", {})


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hello {{ contact.first_name | default('there') }}.", "Hello Ana."),
        ("{{ 1234.5 | money }}", "1,234 dollars and 50 cents"),
        ("{{ 'x' * 5000 }}", "x" * 5000),
        ("{{ '%05d' % 42 }} {{ '{:>4}'.format(7) }}", "00042 7"),
        ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
        ("{{ 10 ** 30 }}", str(10**30)),
        ("{{ contact.first_name.upper() }}", "ANA"),
        ("{{ '{0} {0}'.format('ab') }} {{ '%(a)s-%(a)s' % {'a': 'b'} }}", "ab ab b-b"),
        ("{% set x %}ab{% endset %}{{ x }}{% macro m(a) %}<{{ a }}>{% endmacro %}{{ m(1) }}", "ab<1>"),
        ("{{ 'a-b' | replace('-', ' ') }}", "a b"),
    ],
)
def test_ordinary_templates_still_render(template: str, expected: str) -> None:
    assert render(template, {"contact": {"first_name": "Ana"}}) == expected


def test_lists_cannot_be_changed_and_lipsum_is_gone() -> None:
    assert render("{% set x = [] %}{{ x.append(1) }}{{ x }}", {}) == ""
    assert render("{{ lipsum(1000000) }}", {}) == ""
    assert render("{{ 'a\tb'.expandtabs(100000) }}", {}) == ""  # not a str method templates get


def write_flow(tmp_path: Path, prompt: str) -> Path:
    path = tmp_path / "flow.yaml"
    path.write_text(
        "flow: {name: limits}\n"
        "globals: {agent: false, goodbye: false}\n"
        'variables: {contact: {note: ""}}\n'
        "steps:\n"
        "  hello:\n"
        "    say: Hello.\n"
        "    ask: Shall we go on?\n"
        "    slot: yes_no\n"
        "    next: bye\n"
        "  bye:\n"
        f'    say: "{prompt}"\n'
        "    hangup: done\n"
    )
    return path


def test_validation_reports_a_template_past_its_limits_on_sample_data(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "Bye {{ 'a' * 4000000000 }}")
    assert [str(p) for p in validate_paths([path])] == [
        f"{path}:11:10: steps.bye.say: '*' would build more than 100,000 characters (with sample data)"
    ]


def test_validation_reports_a_template_that_runs_too_long(tmp_path: Path) -> None:
    loops = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    [problem] = validate_paths([write_flow(tmp_path, loops)])
    assert problem.message.endswith(f"template took longer than {TIME_BUDGET_S:g} s (with sample data)")


def test_a_template_past_its_limits_at_run_time_ends_the_call_politely(tmp_path: Path) -> None:
    flow = load_flow(write_flow(tmp_path, "Your note: {{ contact.note * 100000 }}"))  # fine while note is ""
    session = FlowSession(flow, {"contact": {"note": "a long note"}}, NOW)
    assert isinstance(session.start(NOW)[-1], Listen)
    actions = session.handle(Recognition("yes", 0.95), NOW)
    assert actions == [
        Play(FLOW_ERROR_PROMPT, False, "bye"),
        SetOutcome(FLOW_ERROR_OUTCOME),
        HangUp(FLOW_ERROR_OUTCOME),
    ]
    assert session.finished and session.outcome == FLOW_ERROR_OUTCOME


def test_a_question_past_its_limits_never_listens(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "Bye.")
    path.write_text(path.read_text().replace("Shall we go on?", '"{{ contact.note * 100000 }}"'))
    session = FlowSession(load_flow(path), {"contact": {"note": "xyz"}}, NOW)
    actions = session.start(NOW)
    assert not any(isinstance(a, Listen) for a in actions)
    assert actions[0] == Play("Hello.", True, "hello")
    assert actions[-1] == HangUp(FLOW_ERROR_OUTCOME)
