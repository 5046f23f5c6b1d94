"""Importing call lists into SQLite and PostgreSQL: good rows stored, rejects reported,
re-import idempotent, do-not-call numbers marked, malformed files store nothing."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dialer.call_list_csv import ImportFileError
from dialer.db import DialerDataError
from dialer.importer import CampaignSpec, import_csv
from dialer.models import Campaign, CampaignKind, Contact, ContactEvent, DncEntry, EventKind

NOW = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
SPEC = CampaignSpec(kind=CampaignKind.COMPLIANCE_CALLBACK, flow="flows/library/callback.yaml", region="CN")
GOOD = """phone,first_name,last_name,cooling_off_end,product
13812345678,Li,Wei,2025-03-01T10:00:00+08:00,Fund A
+86 139 1234 5678,Wang,Fang,2025-03-01T11:00:00,Fund B
"""
MIXED = (
    GOOD
    + """12345,Bad,Number,2025-03-01T10:00:00+08:00,Fund C
13712345678,No,Date,,Fund D
138 1234 5678,Dup,Licate,2025-03-01T10:00:00+08:00,Fund E
"""
)


def snapshot(engine: Engine) -> list[tuple[object, ...]]:
    with Session(engine) as session:
        rows = session.execute(select(Contact).order_by(Contact.phone)).scalars().all()
        return [(c.id, c.phone, c.row_number, c.source_hash, c.dnc, c.fields, c.window_end) for c in rows]


def test_dialer_data_import_stores_good_rows_and_reports_rejects(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(MIXED, encoding="utf-8")
    report = import_csv(engine, "march", path, SPEC, now=NOW)
    assert (report.rows, report.imported, report.unchanged) == (5, 2, 0)
    lines = [r.format(path) for r in report.rejects]
    assert lines[0] == f"{path}:4: phone: '12345' is not a valid number for its country"
    assert lines[1:] == [
        f"{path}:5: cooling_off_end: missing (required for compliance callbacks)",
        f"{path}:6: phone: duplicate of row 2",
    ]
    assert report.rejects_file == tmp_path / "calls.rejects.csv"
    with report.rejects_file.open(encoding="utf-8") as handle:
        written = list(csv.reader(handle))
    assert written[0] == [
        "row",
        "field",
        "reason",
        "phone",
        "first_name",
        "last_name",
        "cooling_off_end",
        "product",
    ]
    assert [r[:2] for r in written[1:]] == [["4", "phone"], ["5", "cooling_off_end"], ["6", "phone"]]
    assert written[3][3] == "138 1234 5678"
    with Session(engine) as session:
        contacts = session.scalars(select(Contact).order_by(Contact.row_number)).all()
        campaign = session.scalars(select(Campaign)).one()
    assert campaign.name == "march" and campaign.state == "draft"
    assert [c.phone for c in contacts] == ["+8613812345678", "+8613912345678"]
    assert contacts[1].window_start == datetime(2025, 3, 1, 3, 0, tzinfo=UTC)  # naive: Beijing time
    assert contacts[1].next_attempt_at == contacts[1].window_start
    assert contacts[0].fields == {"product": "Fund A"}
    assert all(c.state == "pending" and c.attempts == 0 and not c.dnc for c in contacts)


def test_dialer_data_reimport_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(MIXED, encoding="utf-8")
    import_csv(engine, "march", path, SPEC, now=NOW)
    before = snapshot(engine)
    again = import_csv(engine, "march", path, SPEC, now=NOW.replace(day=2))
    assert (again.imported, again.unchanged, len(again.rejects)) == (0, 2, 3)
    assert snapshot(engine) == before
    # A changed row for a number already imported is a reject, not a silent update.
    path.write_text(GOOD.replace("Fund A", "Fund Z"), encoding="utf-8")
    changed = import_csv(engine, "march", path, SPEC, now=NOW)
    assert [r.format("f") for r in changed.rejects] == [
        "f:2: phone: duplicate: already in the campaign with different data"
    ]
    assert snapshot(engine) == before
    # Clean re-import removes the stale rejects file.
    path.write_text(GOOD, encoding="utf-8")
    assert import_csv(engine, "march", path, SPEC, now=NOW).rejects_file is None
    assert not (tmp_path / "calls.rejects.csv").exists()


def test_dialer_data_dnc_numbers_are_kept_but_marked(engine: Engine, tmp_path: Path) -> None:
    with Session(engine) as session, session.begin():
        session.add(DncEntry(phone="+8613912345678", reason="asked", added_at=NOW))
    path = tmp_path / "calls.csv"
    path.write_text(GOOD, encoding="utf-8")
    report = import_csv(engine, "march", path, SPEC, now=NOW)
    assert (report.imported, report.dnc_marked) == (2, 1)
    with Session(engine) as session:
        marked = session.scalars(select(Contact).where(Contact.dnc.is_(True))).one()
        events = session.scalars(select(ContactEvent)).all()
    assert marked.phone == "+8613912345678"
    # Closed at import (issue 14), not at its first lease or its deadline.
    assert (marked.state, marked.outcome, marked.outcome_at) == ("done", "do_not_call", NOW)
    assert [(e.contact_id, e.kind, e.detail) for e in events] == [
        (marked.id, EventKind.DNC_MARKED, "import; outcome do_not_call")
    ]


def test_dialer_data_malformed_file_stores_nothing(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    good_rows = "".join(f"1381234{i:04d},N{i},X,2025-03-01T10:00:00+08:00,F\n" for i in range(3000))
    path.write_text(GOOD + good_rows + "13900000000,too,many,fields,here,extra\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"calls.csv:3004: row has 6 fields but the header has 5"):
        import_csv(engine, "march", path, SPEC, now=NOW)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 0
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0
    assert not (tmp_path / "calls.rejects.csv").exists()


def test_dialer_data_import_cannot_change_campaign_kind(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(GOOD, encoding="utf-8")
    import_csv(engine, "march", path, SPEC, now=NOW)
    other = CampaignSpec(kind=CampaignKind.RETENTION, flow="flows/library/retention.yaml")
    with pytest.raises(DialerDataError, match="campaign 'march' exists with kind compliance_callback"):
        import_csv(engine, "march", path, other, now=NOW)


def test_dialer_data_rejects_file_falls_back(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(MIXED, encoding="utf-8")
    (tmp_path / "calls.rejects.csv").mkdir()  # unwritable even for root
    report = import_csv(engine, "march", path, SPEC, now=NOW, rejects_fallback_dir=tmp_path / "data")
    assert report.rejects_file == tmp_path / "data" / "calls.rejects.csv"
    assert report.imported == 2


def test_dialer_data_control_characters_are_rejected_not_stored(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_bytes(
        GOOD.encode()
        + b"13712345678,Nul\x00Byte,Row,2025-03-01T10:00:00+08:00,Fund C\n"
        + b'13612345678,Multi,"Line\nName",2025-03-01T10:00:00+08:00,Fund\tD\n'
    )
    report = import_csv(engine, "march", path, SPEC, now=NOW)
    assert (report.rows, report.imported) == (4, 2)
    assert [r.format(path) for r in report.rejects] == [
        f"{path}:4: first_name: contains the control character U+0000 NUL at character 4"
        " (only tab is allowed)",
        f"{path}:5: last_name: contains the control character U+000A LF (line feed) at character 5"
        " (only tab is allowed)",
    ]
    assert report.rejects_file is not None
    written = report.rejects_file.read_text(encoding="utf-8")
    assert "\x00" not in written and "Nul\\x00Byte" in written
    with Session(engine) as session:
        names = session.scalars(select(Contact.first_name).order_by(Contact.row_number)).all()
    assert "\x00" not in "".join(names)


def campaigns(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(Campaign.name)))


def test_dialer_data_an_import_that_rejects_every_row_creates_no_campaign(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(
        "phone,cooling_off_end\n12345,2025-03-01T10:00:00+08:00\n13712345678,\n", encoding="utf-8"
    )
    report = import_csv(engine, "march", path, SPEC, now=NOW)
    assert (report.rows, report.imported, report.rejected_rows) == (2, 0, 2)
    assert report.campaign_discarded and not report.campaign_created
    assert campaigns(engine) == []
    assert report.rejects_file is not None and report.rejects_file.exists()  # the manager still gets it
    # A header-only file creates nothing either; into an existing campaign, rejects keep it.
    path.write_text("phone,cooling_off_end\n", encoding="utf-8")
    assert import_csv(engine, "march", path, SPEC, now=NOW).campaign_discarded
    assert campaigns(engine) == []
    path.write_text(GOOD, encoding="utf-8")
    assert import_csv(engine, "march", path, SPEC, now=NOW).campaign_created
    path.write_text("phone,cooling_off_end\n12345,2025-03-01T10:00:00+08:00\n", encoding="utf-8")
    again = import_csv(engine, "march", path, SPEC, now=NOW)
    assert not again.campaign_discarded and campaigns(engine) == ["march"]


def test_dialer_data_a_row_past_its_deadline_at_import_is_rejected(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(GOOD, encoding="utf-8")
    # Row 2's window (2025-03-01T10:00+08:00 + 24 h) closed at 02:00 UTC; row 3's (11:00 Beijing) at 03:00.
    report = import_csv(engine, "march", path, SPEC, now=datetime(2025, 3, 2, 2, 30, tzinfo=UTC))
    assert [r.format("f") for r in report.rejects] == [
        "f:2: cooling_off_end: the deadline 2025-03-02T10:00:00+08:00 (cooling-off end + 24 h callback"
        " window) has already passed"
    ]
    assert report.imported == 1
    with Session(engine) as session:
        assert session.scalars(select(Contact.phone)).all() == ["+8613912345678"]


def test_dialer_data_a_header_without_a_required_column_is_refused(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("phone,name,callback from\n13812345678,Li,2025-03-01T10:00:00+08:00\n", encoding="utf-8")
    message = (
        r"calls.csv:1: header has no 'cooling_off_end' column, required for compliance_callback campaigns"
        r" \(found: 'phone', 'name', 'callback from'\); use --map cooling_off_end=COLUMN"
    )
    with pytest.raises(ImportFileError, match=message):
        import_csv(engine, "march", path, SPEC, now=NOW)
    assert campaigns(engine) == []
    mapped = import_csv(engine, "march", path, SPEC, now=NOW, column_map={"callback from": "cooling_off_end"})
    assert mapped.imported == 1


def test_dialer_data_a_retention_campaign_that_has_ended_is_refused(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(GOOD, encoding="utf-8")
    spec = CampaignSpec(
        kind=CampaignKind.RETENTION,
        flow="flows/library/retention.yaml",
        region="CN",
        starts_at=datetime(2025, 2, 1, tzinfo=UTC),
        ends_at=datetime(2025, 2, 28, tzinfo=UTC),
    )
    with pytest.raises(DialerDataError, match=r"--ends 2025-02-28T00:00:00\+00:00 has already passed"):
        import_csv(engine, "keep", path, spec, now=NOW)
    assert campaigns(engine) == []
