"""The admin tools through run_ivr.py (subprocess) and through their functions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from flows.chat import run_chat
from flows.conversation_test import run_file
from flows.graph import to_mermaid
from flows.loader import load_flow

ROOT = Path(__file__).resolve().parents[3]
HOTLINE = ROOT / "flows" / "library" / "hotline.yaml"


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


def test_chat_reads_turns_from_a_pipe() -> None:
    proc = run(
        "chat",
        "flows/library/compliance_callback.yaml",
        "--contact",
        '{"first_name": "Maria", "last_name": "Lopez"}',
        stdin="no\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert "bot: Am I speaking with Maria Lopez?" in proc.stdout
    assert proc.stdout.rstrip().endswith("[outcome wrong_person]")


def test_chat_digits_silence_and_end_of_input() -> None:
    lines: list[str] = []
    sim = run_chat(load_flow(HOTLINE), ["/silence", "#4", "/vars", "0.9: yes"], lines.append)
    text = "\n".join(lines)
    assert "bot: Sorry, I didn't hear anything. What would you like to do?" in text
    assert "Saturday from 9 AM to 1 PM" in text
    assert '"pin_attempts": 0' in text
    assert sim.finished and lines[-1] == "[outcome abandoned]"  # the pipe ended: caller hung up


def test_flows_test_passes_for_every_shipped_flow() -> None:
    proc = run("flows", "test", "flows/library/tests")
    assert proc.returncode == 0, proc.stdout
    assert "FAIL" not in proc.stdout and proc.stdout.count("PASS") >= 30


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
    outcome: completed
    expect_variables: {{pin_attempts: 3}}
""")
    results = run_file(test)
    assert len(results) == 1 and not results[0].passed
    report = results[0].report()
    assert "-bot: We are open all night" in report and "+bot: Our lines are open Monday to Friday" in report
    assert "outcome: expected 'completed', got ''" in report
    assert "variable pin_attempts: expected 3, got 0" in report
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
    assert "s_why -->|price / 1| s_price_offer" in proc.stdout
    assert "globals -.->|do_not_call / 9| s_do_not_call" in proc.stdout
    assert to_mermaid(load_flow(HOTLINE)).count("-->") > 30


def test_graph_of_an_invalid_flow_fails_with_its_problems() -> None:
    proc = run("flows", "graph", "tests/flows/broken/duplicates.yaml")
    assert proc.returncode == 1 and "duplicate DTMF key '1'" in proc.stderr
