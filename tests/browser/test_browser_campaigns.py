"""A campaign manager's day in Chromium: upload a list with bad rows and see them, start the
campaign, watch the wallboard change by itself as calls are recorded, open a contact's history
and export the outcomes."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import FilePayload, Page, expect
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dialer.db import make_engine
from dialer.models import Attempt, Contact, utcnow
from tests.browser.conftest import ConsoleServer, screenshot

pytestmark = pytest.mark.e2e

FLOW = "flows/library/compliance_callback.yaml"
CALL_LIST = (
    "phone,first_name,last_name,cooling_off_end,product,amount\n"
    '+14155550100,Ann,Lee,2031-01-01T10:00:00+00:00,=HYPERLINK("http://x"),10000\n'
    "call me maybe,Bob,Ray,2031-01-01T10:00:00+00:00,Fund A,500\n"
    "+14155550101,Cy,Park,next tuesday,Fund A,700\n"
    "+14155550102,Di,Chen,2031-01-02T10:00:00+00:00,Fund B,900\n"
)


def record_call(server: ConsoleServer) -> int:
    """What a dialer worker writes when a call is answered and confirmed, for the first contact."""
    engine = make_engine(server.database_url)
    try:
        with Session(engine) as session, session.begin():
            contact_id = session.scalars(select(Contact.id).order_by(Contact.id)).first()
            assert contact_id is not None
            now = utcnow()
            session.add(
                Attempt(
                    contact_id=contact_id,
                    started_at=now,
                    invite_at=now,
                    answered_at=now + timedelta(seconds=2),
                    flow_started_at=now + timedelta(seconds=2.5),
                    ended_at=now + timedelta(seconds=45),
                    sip_status=200,
                    result="answered",
                    flow_outcome="confirmed",
                    worker="browser-test",
                    recording_id="call-browser-1",
                    decision_text="yes I confirm",
                    decision_confidence=0.91,
                )
            )
            session.execute(
                update(Contact)
                .where(Contact.id == contact_id)
                .values(state="done", outcome="confirmed", outcome_at=now, attempts=1)
            )
    finally:
        engine.dispose()
    return contact_id


def test_manager_uploads_starts_watches_and_exports(
    page_as: Callable[..., Page], console_server: ConsoleServer
) -> None:
    page = page_as("manager")
    page.goto(console_server.base_url + "/campaigns")
    expect(page.locator("details.columns")).to_contain_text("cooling_off_end")
    page.fill("form.import input[name=name]", "june-callbacks")
    page.select_option("form.import select[name=kind]", "compliance_callback")
    page.select_option("form.import select[name=flow]", FLOW)
    page.set_input_files(
        "form.import input[name=file]",
        files=FilePayload(name="june.csv", mimeType="text/csv", buffer=CALL_LIST.encode()),
    )
    screenshot(page, "campaigns")
    page.click("form.import button[type=submit]")
    expect(page.locator("#imported")).to_have_text("2")
    expect(page.locator("#rejected")).to_have_text("2")
    rejects = page.locator("table.rejects tbody tr")
    expect(rejects).to_have_count(2)
    expect(rejects.nth(0)).to_contain_text("3")
    expect(rejects.nth(0)).to_contain_text("phone")
    expect(rejects.nth(1)).to_contain_text("cooling_off_end")
    screenshot(page, "import-rejects")

    page.click("text=Open the wallboard")
    expect(page.locator("#board-state")).to_have_text("draft")
    page.click("button#start")
    expect(page.locator("#board-state")).to_have_text("running")
    expect(page.locator("#attempts")).to_have_text("0")
    expect(page.locator("#live-dot")).to_have_class("live-dot on")
    contact_id = record_call(console_server)
    # No reload: the server-sent events bring the new numbers.
    expect(page.locator("#attempts")).to_have_text("1", timeout=20_000)
    expect(page.locator("#by-outcome")).to_contain_text("confirmed")
    expect(page.locator("#connect-rate")).to_have_text("100.0 %")
    screenshot(page, "wallboard")

    page.click("text=Contacts")
    expect(page.locator("#contacts tbody tr")).to_have_count(2)
    expect(page.locator("#contacts")).not_to_contain_text("+14155550100")  # masked in the list
    screenshot(page, "contacts")
    page.click(f"text=#{contact_id}")
    expect(page.locator("#attempts")).to_contain_text("yes I confirm")
    expect(page.locator("#attempts a")).to_have_attribute("href", "/recordings/call-browser-1")
    screenshot(page, "contact")

    page.goto(console_server.base_url + "/campaigns/june-callbacks")
    with page.expect_download() as download:
        page.click("text=Export CSV")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert [row["outcome"] for row in rows] == ["confirmed", ""]
    assert rows[0]["product"] == '\'=HYPERLINK("http://x")'
    log = console_server.log()
    for event in ("console.campaign_imported", "console.campaign_state", "console.contact_viewed"):
        assert f"event={event}" in log
