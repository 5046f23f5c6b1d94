"""Row checks of the call-list importer: pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.errors import IvrError
from dialer.call_list_columns import COLUMNS, FLOW_FIELDS, help_epilog, required_columns
from dialer.call_list_csv import ImportFileError, Reject, read_rows
from dialer.importer import CampaignSpec, ContactRow, RowParser, parse_column_map
from dialer.models import CampaignKind

HEADER = ["phone", "first_name", "last_name", "timezone", "cooling_off_end", "product", "amount"]
CALLBACK = CampaignSpec(
    kind=CampaignKind.COMPLIANCE_CALLBACK, flow="flows/library/callback.yaml", region="CN"
)


def row(**values: str) -> list[str]:
    base = {
        "phone": "13812345678",
        "first_name": "Li",
        "last_name": "Wei",
        "timezone": "",
        "cooling_off_end": "2025-03-01T10:00:00+08:00",
        "product": "Fund A",
        "amount": "1000",
    }
    base.update(values)
    return [base[name] for name in HEADER]


def good(result: ContactRow | list[Reject]) -> ContactRow:
    assert isinstance(result, ContactRow), result
    return result


def bad(result: ContactRow | list[Reject]) -> list[tuple[str, str]]:
    assert isinstance(result, list), result
    return [(r.field, r.reason) for r in result]


def test_dialer_data_row_normalises_number_and_derives_zone() -> None:
    contact = good(RowParser(HEADER, CALLBACK).parse(2, row(phone="138-1234-5678")))
    assert contact.phone == "+8613812345678"
    assert contact.raw_phone == "138-1234-5678"
    assert contact.timezone == "Asia/Shanghai"
    assert contact.fields == {"product": "Fund A", "amount": "1000"}
    start = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    assert contact.window_start == start
    assert contact.window_end == start + timedelta(hours=24)


def test_dialer_data_callback_window_is_configurable() -> None:
    spec = CampaignSpec(
        kind=CampaignKind.COMPLIANCE_CALLBACK, flow="f", region="CN", callback_window=timedelta(hours=48)
    )
    contact = good(RowParser(HEADER, spec).parse(2, row()))
    assert contact.window_end is not None and contact.window_start is not None
    assert contact.window_end - contact.window_start == timedelta(hours=48)


def test_dialer_data_naive_cooling_off_end_is_callee_local_time() -> None:
    parser = RowParser(HEADER, CampaignSpec(kind=CampaignKind.COMPLIANCE_CALLBACK, flow="f"))
    contact = good(parser.parse(2, row(phone="+1 212 555 0123", cooling_off_end="2025-07-01T09:30")))
    assert contact.timezone == "America/New_York"
    assert contact.cooling_off_end == datetime(2025, 7, 1, 13, 30, tzinfo=UTC)  # EDT is UTC-4


def test_dialer_data_explicit_zone_wins_over_number() -> None:
    contact = good(RowParser(HEADER, CALLBACK).parse(2, row(timezone="Asia/Urumqi")))
    assert contact.timezone == "Asia/Urumqi"


def test_dialer_data_rejects_each_problem_with_its_field() -> None:
    parser = RowParser(HEADER, CALLBACK)
    assert bad(parser.parse(3, row(phone=""))) == [("phone", "missing (required)")]
    assert bad(parser.parse(4, row(phone="12345")))[0][0] == "phone"
    assert bad(parser.parse(5, row(phone="not a number")))[0][0] == "phone"
    problems = bad(parser.parse(6, row(timezone="Mars/Olympus", cooling_off_end="yesterday")))
    assert [f for f, _ in problems] == ["timezone", "cooling_off_end"]
    assert "Mars/Olympus" in problems[0][1]
    assert bad(parser.parse(7, row(cooling_off_end=""))) == [
        ("cooling_off_end", "missing (required for compliance callbacks)")
    ]


def test_dialer_data_ambiguous_zone_is_rejected_not_guessed() -> None:
    parser = RowParser(HEADER, CampaignSpec(kind=CampaignKind.RETENTION, flow="f"))
    problems = bad(parser.parse(2, row(phone="+7 912 345 6789")))  # a Russian mobile range
    assert problems[0][0] == "timezone"
    assert "add a timezone column" in problems[0][1]
    # With the zone given the same number is fine.
    assert good(parser.parse(3, row(phone="+7 912 345 6789", timezone="Asia/Yekaterinburg")))


def test_dialer_data_duplicate_number_in_file_names_first_row() -> None:
    parser = RowParser(HEADER, CALLBACK)
    good(parser.parse(2, row()))
    assert bad(parser.parse(9, row(phone="+86 138 1234 5678"))) == [("phone", "duplicate of row 2")]


def test_dialer_data_same_row_hashes_the_same() -> None:
    a = good(RowParser(HEADER, CALLBACK).parse(2, row()))
    b = good(RowParser(HEADER, CALLBACK).parse(40, row()))
    c = good(RowParser(HEADER, CALLBACK).parse(2, row(amount="2000")))
    assert a.source_hash == b.source_hash != c.source_hash


def test_dialer_data_retention_without_dates_is_open_ended() -> None:
    spec = CampaignSpec(kind=CampaignKind.RETENTION, flow="f", region="CN")
    contact = good(RowParser(HEADER, spec).parse(2, row(cooling_off_end="")))
    assert contact.window_start is None and contact.window_end is None
    assert contact.cooling_off_end is None


def test_dialer_data_priority_column() -> None:
    header = [*HEADER, "priority"]
    parser = RowParser(header, CALLBACK)
    assert good(parser.parse(2, [*row(), "5"])).priority == 5
    assert bad(parser.parse(3, [*row(phone="13912345678"), "high"])) == [
        ("priority", "'high' is not an integer")
    ]


def test_dialer_data_reject_format() -> None:
    assert (
        Reject(7, "phone", "missing (required)").format("calls.csv")
        == "calls.csv:7: phone: missing (required)"
    )


def test_dialer_data_column_map() -> None:
    assert parse_column_map(["phone=Mobile", "first_name = Given"]) == {
        "Mobile": "phone",
        "Given": "first_name",
    }
    with pytest.raises(IvrError, match="NEW=OLD"):
        parse_column_map(["phone"])


def write(tmp_path: Path, content: bytes, name: str = "calls.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_dialer_data_read_rows_numbers_rows_by_file_line(tmp_path: Path) -> None:
    path = write(tmp_path, b'\xef\xbb\xbfMobile,first_name,note\n1,A,x\n\n2,B,"two\nlines"\n3,C,y\n')
    header, rows = read_rows(path, {"Mobile": "phone"})
    assert header == ["phone", "first_name", "note"]
    assert [(line, values[0]) for line, values in rows] == [(2, "1"), (4, "2"), (6, "3")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"calls.csv:1: no header row"),
        (b"name,city\nA,B\n", r"calls.csv:1: header has no 'phone' column \(found: name, city\)"),
        (b"phone,phone\n1,2\n", r"calls.csv:1: header: column 'phone' appears twice"),
        (b"phone,name\n1,A\n2,B,extra\n", r"calls.csv:3: row has 3 fields but the header has 2"),
        (b"phone,name\n1,A\n2\n", r"calls.csv:3: row has 1 fields but the header has 2"),
        (b"phone,name\n1,Jos\xe9\n", r"calls.csv: not UTF-8 text"),
        (b'phone,name\n1,"A"B\n', r"calls.csv:2: malformed CSV"),
        (b'phone,name\n1,A\n2,"B\n', r"calls.csv:\d+: malformed CSV"),
    ],
)
def test_dialer_data_malformed_file_is_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ImportFileError, match=message):
        _, rows = read_rows(path, {})
        list(rows)


def test_dialer_data_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot open call list"):
        read_rows(tmp_path / "nope.csv", {})


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("first_name", "Li\x00", "contains the control character U+0000 NUL at character 3"),
        ("product", "Fund\x1bA", "contains the control character U+001B ESC at character 5"),
        ("amount", "10\n00", "contains the control character U+000A LF (line feed) at character 3"),
        ("phone", "\x7f13812345678", "contains the control character U+007F DEL at character 1"),
        ("last_name", "W\x85ei", "contains the control character U+0085 at character 2"),
    ],
    ids=["nul", "escape", "newline", "del", "c1"],
)
def test_dialer_data_control_characters_reject_the_row_by_field(field: str, value: str, reason: str) -> None:
    assert bad(RowParser(HEADER, CALLBACK).parse(7, row(**{field: value}))) == [
        (field, reason + " (only tab is allowed)")
    ]


def test_dialer_data_every_field_with_a_control_character_is_named() -> None:
    rejects = RowParser(HEADER, CALLBACK).parse(3, row(first_name="\x00", amount="\x01"))
    assert [(r.row, r.field) for r in rejects] == [(3, "first_name"), (3, "amount")]  # type: ignore[union-attr]


def test_dialer_data_a_tab_inside_a_cell_is_fine() -> None:
    assert good(RowParser(HEADER, CALLBACK).parse(2, row(product="Fund\tA"))).fields["product"] == "Fund\tA"


def test_dialer_data_control_character_in_the_header_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_bytes(b"phone,na\x00me\n+8613812345678,x\n")
    message = r"calls.csv:1: header: column 2 contains the control character U\+0000 NUL"
    with pytest.raises(ImportFileError, match=message):
        read_rows(path, {})


def test_dialer_data_a_row_whose_deadline_passed_before_the_import_is_rejected() -> None:
    # Cooling-off ended 2025-03-01T10:00+08:00 (02:00 UTC): the 24 h window closes 2025-03-02T02:00 UTC.
    late = RowParser(HEADER, CALLBACK, now=datetime(2025, 3, 2, 2, 0, tzinfo=UTC))
    assert bad(late.parse(5, row())) == [
        (
            "cooling_off_end",
            "the deadline 2025-03-02T10:00:00+08:00 (cooling-off end + 24 h callback window)"
            " has already passed",
        )
    ]
    in_time = RowParser(HEADER, CALLBACK, now=datetime(2025, 3, 2, 1, 59, tzinfo=UTC))
    assert good(in_time.parse(5, row())).window_end == datetime(2025, 3, 2, 2, 0, tzinfo=UTC)
    # A rejected late row does not make a later row with the same number a "duplicate".
    assert bad(late.parse(6, row())) == bad(late.parse(5, row()))


def test_dialer_data_import_help_and_docs_describe_every_column() -> None:
    epilog = help_epilog()
    docs = (Path(__file__).resolve().parents[3] / "docs" / "campaigns.md").read_text(encoding="utf-8")
    for column in COLUMNS:
        assert f"  {column.name} (" in epilog
        assert f"`{column.name}`" in docs, column.name
        assert column.example in docs, column.example
    assert "phone (required)" in epilog
    assert "cooling_off_end (required for compliance_callback)" in epilog
    for kind, fields in FLOW_FIELDS.items():
        assert kind in docs
        for name, example, _ in fields:
            assert name in epilog and f"`{name}`" in docs and example in docs
    assert required_columns("compliance_callback") == ["phone", "cooling_off_end"]
    assert required_columns("retention") == ["phone"]
