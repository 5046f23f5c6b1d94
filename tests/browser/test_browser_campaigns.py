"""A campaign manager's day in Chromium: upload a list with bad rows and see them, start the
campaign, watch the wallboard change by itself while ``run_ivr.py dial`` calls a real ``sipp``
callee who answers, open the contact's history and export the outcomes.

The console places no calls (docs/console.md): the dialer runs beside it on the same data dir,
as an operator would run it, and dials the campaign once the page has started it. The callee is
the person of test_e2e_dialer.py ("Hello?", then "No." when asked whether they are Ann Lee, and
"No." again when asked once more): the proven timing, and an outcome (``wrong_person``) that
only the flow, fed by the callee's real words, can decide. A "yes" all the way to ``confirmed``
would need a spoken date of birth and a 35 s risk disclosure: more than a page test should hang on.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import FilePayload, Page, expect

from tests.browser.conftest import MQTT_BROKER, ROOT, ConsoleServer, screenshot
from tests.e2e.campaign_runs import person_audio
from tests.e2e.conftest import list_recordings, sipp_uas

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CAMPAIGN = "june-callbacks"
FLOW = "flows/library/compliance_callback.yaml"
CALL_S = 90_000
"""Milliseconds the page may wait for the call to end and its outcome to show (it takes ~25 s)."""


def call_list(now: datetime) -> str:
    """Two good rows: Ann, whose callback window is open now (so she is called), and Di, whose
    window opens in 2031 (so she waits); two bad rows: a number that is none, a date that is none."""
    opened = (now - timedelta(hours=1)).isoformat(timespec="seconds")
    return (
        "phone,first_name,last_name,timezone,cooling_off_end,product,amount\n"
        f'+14155550100,Ann,Lee,America/Los_Angeles,{opened},=HYPERLINK("http://x"),10000\n'
        "call me maybe,Bob,Ray,America/Los_Angeles,2031-01-01T10:00:00+00:00,Fund A,500\n"
        "+14155550101,Cy,Park,America/Los_Angeles,next tuesday,Fund A,700\n"
        "+14155550102,Di,Chen,America/Los_Angeles,2031-01-02T10:00:00+00:00,Fund B,900\n"
    )


@pytest.fixture
def callee(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    """A sipp UAS that answers one call as a person who says "No." twice (see the module doc)."""
    workdir = tmp_path / "callee"
    workdir.mkdir()
    person_audio(workdir, "No.", answer_at_s=12.0, then="No.", then_after_s=6.5)
    peer, port = sipp_uas("uas_person", workdir, calls=1)
    try:
        yield peer, port, workdir
    finally:
        if peer.poll() is None:
            peer.kill()
            peer.wait()


@pytest.fixture
def dialer(
    console_server: ConsoleServer, callee: tuple[subprocess.Popen[str], int, Path], tmp_path: Path
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Starts ``run_ivr.py dial --campaign CAMPAIGN`` on the console's data dir, its trunk the
    callee; stopped at the end (SIGTERM: calls in progress finish first)."""
    started: list[subprocess.Popen[bytes]] = []
    log_path = tmp_path / "dial.log"
    _, port, _ = callee

    def start() -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "IVR_DIALER__TRUNK_URI": f"sip:{{number}}@127.0.0.1:{port}",
            # Above the e2e tests' RTP ports (20000-60199; they may run at the same time) and
            # Linux's ephemeral range (to 60999): no one else binds here.
            "IVR_SIP__RTP_PORT_START": str(61000 + (port % 40) * 100),
            "IVR_SIP__RTP_PORT_RANGE": "100",
            "IVR_MQTT__HOST": MQTT_BROKER[0],
            "IVR_MQTT__PORT": str(MQTT_BROKER[1]),
            "IVR_MQTT__TOPIC_PREFIX": console_server.mqtt_prefix,
            "IVR_LOG_LEVEL": "info",
        }
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "run_ivr.py"),
                    "dial",
                    "--campaign",
                    CAMPAIGN,
                    "--data-dir",
                    str(console_server.data_dir),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def stop(proc: subprocess.Popen[bytes], log: Path) -> str:
    """SIGTERM the dialer as an operator would; it must exit 0. Returns its log."""
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("dial did not exit within 30 s of SIGTERM") from None
    text = log.read_text(encoding="utf-8", errors="replace")
    assert code == 0, f"dial exited {code}:\n{text[-3000:]}"
    return text


def test_manager_uploads_starts_watches_a_real_call_and_exports(
    page_as: Callable[..., Page],
    console_server: ConsoleServer,
    callee: tuple[subprocess.Popen[str], int, Path],
    dialer: Callable[[], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    page = page_as("manager")
    page.goto(console_server.base_url + "/campaigns")
    expect(page.locator("details.columns")).to_contain_text("cooling_off_end")
    page.fill("form.import input[name=name]", CAMPAIGN)
    page.select_option("form.import select[name=kind]", "compliance_callback")
    page.select_option("form.import select[name=flow]", FLOW)
    page.fill("form.import input[name=hours]", "00:00-23:59")  # whatever the hour in California
    page.set_input_files(
        "form.import input[name=file]",
        files=FilePayload(name="june.csv", mimeType="text/csv", buffer=call_list(datetime.now(UTC)).encode()),
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
    expect(page.locator("#attempts")).to_have_text("0")
    dial = dialer()  # the dialer beside the console: nothing to dial while the campaign is a draft
    page.click("button#start")
    expect(page.locator("#board-state")).to_have_text("running")
    expect(page.locator("#live-dot")).to_have_class("live-dot on")
    # No reload from here on: the server-sent events bring each change. While the callee talks:
    expect(page.locator("#lines")).to_have_text("1", timeout=60_000)
    expect(page.locator("#by-state")).to_contain_text("in_call")
    expect(page.locator("#attempts")).to_have_text("0")  # the figures count calls that are over
    # Once the flow has decided and the call has ended:
    expect(page.locator("#by-outcome")).to_contain_text("wrong_person", timeout=CALL_S)
    expect(page.locator("#lines")).to_have_text("0")
    expect(page.locator("#attempts")).to_have_text("1")
    expect(page.locator("#connect-rate")).to_have_text("100.0 %")
    expect(page.locator("#success-rate")).to_have_text("0.0 %")
    expect(page.locator("#watch")).to_contain_text("answered_human")
    screenshot(page, "wallboard")

    peer, _, workdir = callee
    assert peer.wait(30) == 0, (workdir / "sipp_errors.log").read_text(errors="replace")
    assert "event=dialer.outcome" in stop(dial, tmp_path / "dial.log")
    (recording,) = [r for r in list_recordings(console_server.data_dir) if r["direction"] == "outbound"]
    assert recording["outcome"] == "wrong_person"

    page.click("text=Contacts")
    expect(page.locator("#contacts tbody tr")).to_have_count(2)
    expect(page.locator("#contacts")).not_to_contain_text("+14155550100")  # masked in the list
    ann = page.locator("#contacts tbody tr", has_text="wrong_person")
    expect(ann).to_have_count(1)
    expect(ann).to_contain_text("answered_human")
    screenshot(page, "contacts")
    ann.locator("a").click()
    expect(page.locator("#outcome")).to_contain_text("wrong_person")
    attempt = page.locator("#attempts tbody tr")
    expect(attempt).to_have_count(1)
    cells = attempt.locator("td")
    expect(cells.nth(4)).to_have_text("200")  # the SIP status of the answered INVITE
    expect(cells.nth(5)).to_contain_text("answered_human")
    expect(cells.nth(6)).to_have_text("wrong_person")
    expect(cells.nth(7)).to_contain_text("no", ignore_case=True)  # the words that decided it
    link = cells.nth(8).locator("a")
    expect(link).to_have_attribute("href", f"/recordings/{recording['call_id']}")
    expect(link).to_have_text(recording["call_id"])
    screenshot(page, "contact")

    page.goto(f"{console_server.base_url}/campaigns/{CAMPAIGN}")
    with page.expect_download() as download:
        page.click("text=Export CSV")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert [(row["phone"], row["outcome"]) for row in rows] == [
        ("+14155550100", "wrong_person"),
        ("+14155550102", ""),
    ]
    assert rows[0]["recording_id"] == recording["call_id"]
    assert rows[0]["product"] == '\'=HYPERLINK("http://x")'
    log = console_server.log()
    for event in ("console.campaign_imported", "console.campaign_state", "console.contact_viewed"):
        assert f"event={event}" in log
