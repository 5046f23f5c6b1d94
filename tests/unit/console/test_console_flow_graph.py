"""The graph text the flows page hands to Mermaid, for every shipped flow: it loads, and each
line is an edge or a node whose label is quoted. The browser test draws only the hotline (the
graph that once broke on an unquoted ``is_open('...')``); loading the 5.5 MB Mermaid once per
shipped flow cost seconds each, while this check costs milliseconds and covers every flow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from console.flow_files import flow_state
from tests.unit.flows.test_flows_mermaid import EDGE, NODE

LIBRARY = Path(__file__).resolve().parents[3] / "flows" / "library"
SHIPPED = sorted(LIBRARY.glob("*.yaml"))


def unquoted_lines(text: str) -> list[str]:
    """The lines of a Mermaid flowchart that are neither an edge with a quoted (or no) label nor
    a node with a quoted label."""
    bad = []
    for raw in text.splitlines()[1:]:
        line = raw.split(" --> ")[0] if raw.lstrip().startswith("start(") else raw
        edge = EDGE.match(line)
        if edge is not None:
            label = edge.group("label")
            if label is not None and not re.fullmatch(r'"[^"|]*"', label):
                bad.append(raw)
        elif not NODE.match(line):
            bad.append(raw)
    return bad


def test_the_shipped_library_is_what_the_test_covers() -> None:
    assert {p.stem for p in SHIPPED} >= {"compliance_callback", "demo", "hotline", "retention"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_the_flows_page_graph_of_every_shipped_flow_quotes_its_labels(path: Path) -> None:
    state = flow_state(path)
    assert state.mermaid, f"{path.name} did not load: {[str(p) for p in state.problems]}"
    assert state.mermaid.splitlines()[0] == "flowchart TD"
    assert unquoted_lines(state.mermaid) == [], path.name
    assert state.mermaid.count("-->") >= 3, path.name


def test_the_check_finds_the_label_that_broke_the_hotline_graph() -> None:
    """The check can fail: the hotline's condition edge as it was before labels were quoted."""
    state = flow_state(LIBRARY / "hotline.yaml")
    quoted = "-->|\"is_open('contact_center')\"| s_welcome"
    assert quoted in state.mermaid
    broken = state.mermaid.replace(quoted, "-->|is_open('contact_center')| s_welcome")
    assert unquoted_lines(broken) == [line for line in broken.splitlines() if "|is_open(" in line]
    assert unquoted_lines("flowchart TD\n    s_a[say hello]") == ["    s_a[say hello]"]
