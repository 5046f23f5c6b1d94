"""Publishing flow versions: validated before serving, numbered with who and when, diffable,
rolled back by publishing an older text again, and seen by ``serve``'s hot reload."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows import FlowRepository, FlowValidationError
from flows.versions import FlowHistoryError, FlowVersions

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
FLOW = """flow: {{name: versions, version: "{version}"}}
globals: {{agent: false, goodbye: false}}
steps:
  hello:
    say: Version {version}.
    hangup: done
"""
BROKEN = """flow: {name: versions, version: "3"}
globals: {agent: false, goodbye: false}
steps:
  hello:
    say: Broken.
    next: nowhere
"""


def make(tmp_path: Path) -> FlowVersions:
    served = tmp_path / "flows" / "greeting.yaml"
    served.parent.mkdir()
    served.write_text(FLOW.format(version="1"))
    return FlowVersions(served, tmp_path / "history" / "greeting")


def test_publish_keeps_the_hand_written_file_then_serves_the_new_version(tmp_path: Path) -> None:
    versions = make(tmp_path)
    published = versions.publish(FLOW.format(version="2"), "ada", NOW)
    assert published.number == 2 and published.user == "ada" and published.action == "publish"
    assert [(v.number, v.action) for v in versions.versions()] == [(1, "found"), (2, "publish")]
    assert versions.text(1) == FLOW.format(version="1")
    assert versions.served.read_text() == FLOW.format(version="2")
    assert stat.S_IMODE(versions.history_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((versions.history_dir / "0002.yaml").stat().st_mode) == 0o600
    assert not list(versions.served.parent.glob(".*")), "the candidate file must be cleaned up"


def test_an_invalid_text_is_refused_at_its_line_and_never_served(tmp_path: Path) -> None:
    versions = make(tmp_path)
    assert [p.line for p in versions.check(BROKEN) if "nowhere" in p.message] == [6]
    with pytest.raises(FlowValidationError) as caught:
        versions.publish(BROKEN, "ada", NOW)
    problem = next(p for p in caught.value.problems if "nowhere" in p.message)
    assert (problem.file, problem.line) == (str(versions.served), 6)
    assert versions.served.read_text() == FLOW.format(version="1")
    assert versions.versions() == []
    assert versions.check(FLOW.format(version="9")) == []


def test_rollback_republishes_an_older_text_as_a_new_version_and_diff_shows_the_change(
    tmp_path: Path,
) -> None:
    versions = make(tmp_path)
    versions.publish(FLOW.format(version="2"), "ada", NOW)
    rolled = versions.rollback(1, "grace", NOW + timedelta(minutes=5))
    assert (rolled.number, rolled.action, rolled.source, rolled.user) == (3, "rollback", 1, "grace")
    assert versions.served.read_text() == FLOW.format(version="1")
    assert versions.versions()[-1].at == NOW + timedelta(minutes=5)
    diff = versions.diff(1, 2)
    assert "-    say: Version 1.\n" in diff and "+    say: Version 2.\n" in diff
    assert diff[0].startswith("--- greeting.yaml v1")
    with pytest.raises(FlowHistoryError, match="no version 7"):
        versions.rollback(7, "grace", NOW)


def test_a_publish_is_seen_by_the_hot_reload_even_within_one_clock_tick(tmp_path: Path) -> None:
    versions = make(tmp_path)
    repository = FlowRepository(versions.served)
    assert repository.current().metadata.version == "1"
    versions.publish(FLOW.format(version="2"), "ada", NOW)  # same size as version 1
    assert repository.current().metadata.version == "2"
    versions.rollback(1, "ada", NOW)
    assert repository.current().metadata.version == "1" and repository.reloads == 2


def test_a_damaged_history_is_reported_with_file_and_line(tmp_path: Path) -> None:
    versions = make(tmp_path)
    versions.publish(FLOW.format(version="2"), "ada", NOW)
    history = versions.history_dir / "history.jsonl"
    history.write_text(history.read_text() + json.dumps({"version": "x"}) + "\n")
    with pytest.raises(FlowHistoryError, match=r"history.jsonl:3: unreadable"):
        versions.versions()
    with pytest.raises(FlowHistoryError, match="who published"):
        versions.publish(FLOW.format(version="4"), " ", NOW)
