"""Empty, null-only, non-mapping, oversized and special files: a located problem, never a traceback.

``run_ivr.py flows validate`` on such files is tested in tests/component/flows/.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from flows import FlowRepository, FlowValidationError, load_flow, validate_paths
from flows.yaml_source import MAX_FILE_BYTES, MAX_NUMBER_CHARS, MAX_TEXT_CHARS

VALID = """flow: {name: ok, version: "1"}
globals: {agent: false, goodbye: false}
steps:
  hello:
    say: Hello.
    hangup: done
"""


def problems_of(tmp_path: Path, text: str | bytes) -> list[str]:
    path = tmp_path / "flow.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return [f"{p.line}:{p.col}: {p.message}" for p in validate_paths([path])]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "1:1: flow file is empty: expected a mapping with flow: and steps:"),
        ("# only a comment\n\n", "1:1: flow file is empty: expected a mapping with flow: and steps:"),
        ("~\n", "1:1: flow file holds only null: expected a mapping with flow: and steps:"),
        ("# x\n\n  null\n", "3:3: flow file holds only null: expected a mapping with flow: and steps:"),
        ("---\n...\n", "2:1: flow file holds only null: expected a mapping with flow: and steps:"),
        ("- a\n- b\n", "1:1: flow file holds a list: expected a mapping with flow: and steps:"),
        ("just words\n", "1:1: flow file holds text: expected a mapping with flow: and steps:"),
        ("42\n", "1:1: flow file holds a number: expected a mapping with flow: and steps:"),
    ],
    ids=["empty", "comment", "tilde", "null-later", "empty-document", "list", "text", "number"],
)
def test_documents_that_are_not_a_flow_are_one_located_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert problems_of(tmp_path, text) == [expected]
    with pytest.raises(FlowValidationError) as info:
        load_flow(tmp_path / "flow.yaml")
    assert len(info.value.problems) == 1


def test_a_folder_without_flows_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a flow")
    problems = validate_paths([tmp_path])
    assert [str(p) for p in problems] == [f"{tmp_path}:1:1: folder holds no flow files (*.yaml, *.yml)"]


def test_a_version_of_100000_digits_is_located_not_a_traceback(tmp_path: Path) -> None:
    text = VALID.replace('version: "1"', "version: " + "9" * 100_000)
    assert problems_of(tmp_path, text) == [
        f"1:27: number of 100,000 characters is too long (at most {MAX_NUMBER_CHARS})"
    ]


@pytest.mark.parametrize(
    "value",
    ["1." + "9" * 5000, "-" + "1" * 60, "0x" + "f" * 60, "1_000" * 20],
    ids=["float", "negative", "hex", "underscores"],
)
def test_other_oversized_numbers_are_located(tmp_path: Path, value: str) -> None:
    text = VALID.replace('version: "1"', f"version: {value}")
    assert problems_of(tmp_path, text) == [
        f"1:27: number of {len(value):,} characters is too long (at most {MAX_NUMBER_CHARS})"
    ]


def test_an_oversized_text_is_located(tmp_path: Path) -> None:
    text = VALID.replace("say: Hello.", "say: " + "blah " * 4000)
    assert problems_of(tmp_path, text) == [
        f"5:10: text of 19,999 characters is too long (at most {MAX_TEXT_CHARS:,})"
    ]


def test_an_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    text = VALID + "#" * MAX_FILE_BYTES
    [problem] = problems_of(tmp_path, text)
    assert problem.startswith("1:1: flow file is too large: ") and "(at most 1,000,000)" in problem


def test_a_file_that_is_not_utf8_points_at_the_byte(tmp_path: Path) -> None:
    assert problems_of(tmp_path, b"flow: {name: x}\nsteps:\n  a: \xff\n") == [
        "3:6: flow file is not UTF-8: invalid start byte"
    ]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_is_not_read() -> None:
    [problem] = validate_paths(["/dev/zero"])
    assert str(problem) == "/dev/zero:1:1: cannot read flow file: not a regular file"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("version:", "rate: 100000, version:", "flow.rate: expected a whole number from 40 to 600, got 1000"),
        ("version:", f"rate: {'9' * 40}, version:", "flow.rate: expected a whole number from 40 to 600"),
        ("steps:", "settings: {no_input_timeout: .inf}\nsteps:", "no_input_timeout: invalid duration"),
        ("steps:", "settings: {no_input_timeout: 99999h}\nsteps:", "'99999h' is longer than 24h"),
        ("steps:", "settings: {max_no_input: 99999999}\nsteps:", "max_no_input: expected a whole number"),
    ],
    ids=["rate", "rate-huge", "inf-duration", "long-duration", "retries"],
)
def test_numbers_out_of_range_are_located(tmp_path: Path, old: str, new: str, message: str) -> None:
    problems = problems_of(tmp_path, VALID.replace(old, new, 1))
    assert len(problems) == 1 and message in problems[0], problems


def test_hot_reload_of_an_emptied_file_names_the_problem(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(VALID)
    repo = FlowRepository(path)
    good = repo.current()
    path.write_text("")
    os.utime(path, ns=(10**18, 10**18))
    with caplog.at_level(logging.ERROR, logger="ivr.flows"):
        assert repo.current() is good
    assert [p.message for p in repo.problems] == [
        "flow file is empty: expected a mapping with flow: and steps:"
    ]
    rejected = [r for r in caplog.records if "flow_reload_rejected" in r.getMessage()]
    assert rejected, caplog.text
    assert "flow file is empty" in str(vars(rejected[0]))


def test_an_empty_subflow_file_is_located_at_the_include(tmp_path: Path) -> None:
    (tmp_path / "part.yaml").write_text("~\n")
    main = tmp_path / "main.yaml"
    main.write_text(
        "globals: {agent: false, goodbye: false}\nsteps:\n  start:\n    subflow: part.yaml\n"
        "    next: bye\n  bye:\n    hangup: done\n"
    )
    messages = [p.message for p in validate_paths([main])]
    assert "subflow file holds only null: expected a mapping with steps:" in messages
