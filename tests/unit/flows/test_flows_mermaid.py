"""``flows graph``: every label of every shipped flow is quoted, so Mermaid can parse it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows.graph import to_mermaid
from flows.loader import load_flow

LIBRARY = Path(__file__).resolve().parents[3] / "flows" / "library"
SHIPPED = sorted(LIBRARY.glob("*.yaml"))
EDGE = re.compile(r"^\s+\w+ -\.?->(?:\|(?P<label>.*)\|)? \w+$")
NODE = re.compile(
    r'^\s+\w+(?:\[/|\{\{|\(\(|\(\[|\[\[|\[|\{)"(?P<label>[^"]*)"(?:/\]|\}\}|\)\)|\]\)|\]\]|\]|\})$'
)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_line_of_a_shipped_flow_graph_is_an_edge_or_a_quoted_node(path: Path) -> None:
    lines = to_mermaid(load_flow(path)).splitlines()
    assert lines[0] == "flowchart TD"
    for raw in lines[1:]:
        line = raw.split(" --> ")[0] if raw.lstrip().startswith("start(") else raw
        edge = EDGE.match(line)
        if edge is not None:
            label = edge.group("label")
            assert label is None or re.fullmatch(r'"[^"|]*"', label), line
        else:
            assert NODE.match(line), f"{path.name}: unquoted or malformed: {line}"


def test_shipped_flows_exist_and_the_hotline_condition_keeps_its_parentheses() -> None:
    assert len(SHIPPED) >= 4
    text = to_mermaid(load_flow(LIBRARY / "hotline.yaml"))
    assert "-->|\"is_open('contact_center')\"| s_welcome" in text


def test_characters_that_break_a_label_become_entity_codes(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(
        'flow: {name: "odd \\"quotes\\" [x]"}\n'
        "globals: {agent: false, goodbye: false}\n"
        "variables: {n: 0}\n"
        "steps:\n"
        "  check:\n"
        "    branch:\n"
        "      - if: n < 3 and n != 2\n"
        "        goto: note\n"
        "      - else: bye\n"
        "  note:\n"
        "    say: 'Bye | #1; {soon}'\n"
        "    next: bye\n"
        "  bye:\n"
        "    hangup: done\n"
    )
    text = to_mermaid(load_flow(path))
    assert 'start(("odd #34;quotes#34; #91;x#93;"))' in text
    assert '-->|"n #60; 3 and n != 2"| s_note' in text
    assert "#124; #35;1#59; #123;soon#125;" in text
