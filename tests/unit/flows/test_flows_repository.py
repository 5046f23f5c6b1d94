"""Hot reload: new calls get a valid new version, bad edits never replace a good flow."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows import FlowRepository, FlowSession, FlowValidationError, Recognition

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
GOOD = """
flow: {{name: reload, version: "{version}"}}
globals: {{agent: false, goodbye: false}}
steps:
  hello:
    say: Version {version}.
    ask: Continue?
    slot: yes_no
    next: bye
  bye:
    say: Bye.
    hangup: done
"""


def write(path: Path, text: str, tick: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(tick * 1_000_000_000, tick * 1_000_000_000))


def test_valid_change_is_picked_up_and_running_sessions_keep_their_flow(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    write(path, GOOD.format(version="1"), 1)
    repo = FlowRepository(path)
    old = repo.current()
    session = FlowSession(old, None, NOW)
    assert session.start(NOW)[0].text == "Version 1."  # type: ignore[union-attr]
    write(path, GOOD.format(version="2"), 2)
    new = repo.current()
    assert new is not old and new.metadata.version == "2" and repo.reloads == 1
    assert session.flow is old
    assert session.handle(Recognition("yes"), NOW)[0].text == "Bye."  # type: ignore[union-attr]


def test_invalid_change_keeps_the_old_flow_and_reports(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "flow.yaml"
    write(path, GOOD.format(version="1"), 1)
    repo = FlowRepository(path)
    good = repo.current()
    write(path, GOOD.format(version="2").replace("next: bye", "next: byee"), 2)
    with caplog.at_level("ERROR"):
        assert repo.current() is good
    assert repo.problems and "unknown step 'byee'" in repo.problems[0].message
    assert "flow_reload_rejected" in caplog.text
    assert repo.current() is good  # not re-read until the file changes again
    write(path, GOOD.format(version="3"), 3)
    assert repo.current().metadata.version == "3" and repo.problems == []


def test_an_invalid_first_version_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text("steps: [")
    with pytest.raises(FlowValidationError, match="YAML syntax error"):
        FlowRepository(path)


def test_a_changed_subflow_triggers_a_reload(tmp_path: Path) -> None:
    (tmp_path / "part.yaml").write_text("steps:\n  inner:\n    say: One.\n    return: true\n")
    main = tmp_path / "main.yaml"
    main.write_text(
        "globals: {agent: false, goodbye: false}\nsteps:\n  start:\n    subflow: part.yaml\n"
        "    next: bye\n  bye:\n    hangup: done\n"
    )
    repo = FlowRepository(main)
    write(tmp_path / "part.yaml", "steps:\n  inner:\n    say: Two.\n    return: true\n", 5)
    flow = repo.current()
    assert flow.steps["start/inner"].say == ("Two.",)
