"""The admin tools' functions, in process: chat, conversation tests and the Mermaid graph.

The same tools through ``run_ivr.py`` are tested in tests/component/flows/.
"""

from __future__ import annotations

from pathlib import Path

from flows.chat import run_chat
from flows.conversation_test import run_file
from flows.graph import to_mermaid
from flows.loader import load_flow

ROOT = Path(__file__).resolve().parents[3]
HOTLINE = ROOT / "flows" / "library" / "hotline.yaml"
RETENTION = ROOT / "flows" / "library" / "retention.yaml"


def test_chat_digits_silence_and_end_of_input() -> None:
    lines: list[str] = []
    sim = run_chat(load_flow(HOTLINE), ["/silence", "#4", "/vars", "0.9: yes"], lines.append)
    text = "\n".join(lines)
    assert "bot: Sorry, I didn't hear anything. What would you like to do?" in text
    assert "Saturday from 9 AM to 1 PM" in text
    assert '"pin_attempts": 0' in text
    assert sim.finished and lines[-1] == "[outcome abandoned]"  # the pipe ended: caller hung up


def test_a_failing_conversation_test_shows_a_diff(tmp_path: Path) -> None:
    test = tmp_path / "t.yaml"
    test.write_text(f"""flow: {HOTLINE}
now: 2026-03-02T10:00:00+00:00
cases:
  - name: wrong expectation
    turns:
      - bot: [Welcome to Acme Bank, How can I help you today?]
      - caller: opening hours
      - bot: [We are open all night, anything else]
    outcome: completed
    expect_variables: {{pin_attempts: 3}}
""")
    results = run_file(test)
    assert len(results) == 1 and not results[0].passed
    report = results[0].report()
    assert "-bot: We are open all night" in report and "+bot: Our lines are open Monday to Friday" in report
    assert "outcome: expected 'completed', got ''" in report
    assert "variable pin_attempts: expected 3, got 0" in report


def test_every_shipped_conversation_test_passes() -> None:
    results = [
        r for path in sorted((ROOT / "flows" / "library" / "tests").glob("*.yaml")) for r in run_file(path)
    ]
    failed = [r.report() for r in results if not r.passed]
    assert not failed, "\n".join(failed)
    assert len(results) >= 40


def test_graph_is_mermaid() -> None:
    text = to_mermaid(load_flow(RETENTION))
    assert text.startswith("flowchart TD\n")
    assert 's_why -->|"price / 1"| s_price_offer' in text
    assert 's_price_offer -->|"no"| s_declined' in text
    assert 'globals -.->|"do_not_call / 9"| s_do_not_call' in text
    assert to_mermaid(load_flow(HOTLINE)).count("-->") > 30
