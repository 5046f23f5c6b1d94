"""An auditor finds a call by the caller's number and plays it in Chromium: the audio element
loads the WAV from the console and plays, the transcript turn being spoken is highlighted; a
manager is refused with no data in the page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from playwright.sync_api import Page

from config.settings import DatabaseSettings
from media.frames import FRAME_SAMPLES
from recordings import CallMetadata, DualTrackRecorder
from recordings.access_log import read_access_log
from recordings.database import open_index_database
from tests.browser.conftest import ConsoleServer, screenshot

pytestmark = pytest.mark.e2e
START = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
CALLER = "+15550100123"


def seal_call(server: ConsoleServer, call_id: str, caller: str) -> None:
    """A 4-second stereo call sealed and indexed the way ``serve`` does: the bot greets on the
    right channel (0-1.5 s), the caller answers on the left (2.0-3.8 s)."""
    meta = CallMetadata("inbound", f"sip:{caller}@10.0.0.1", "sip:100@pbx", START, "hotline", "3")
    recorder = DualTrackRecorder(server.data_dir / "recordings", call_id, meta, index_url=server.database_url)
    tone = (3000 * np.sin(np.arange(FRAME_SAMPLES) * 2 * np.pi * 440 / 8000)).astype(np.int16)
    silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    for frame in range(200):  # 20 ms frames
        t = frame * 0.02
        recorder.push_bot(tone if t < 1.5 else silence)
        recorder.push_caller(tone if 2.0 <= t < 3.8 else silence)
    recorder.add_turn("bot", "Welcome to Acme Bank, how can I help?", 0.0, 1.5)
    recorder.add_turn("caller", "I want to cancel my card", 2.0, 3.8, 0.93)
    recorder.close(START + timedelta(seconds=4), outcome="card_cancelled")


def test_an_auditor_finds_a_call_by_number_and_plays_it_with_the_turn_highlighted(
    console_server: ConsoleServer, page_as: Callable[..., Page]
) -> None:
    seal_call(console_server, "browser-call-1", CALLER)
    seal_call(console_server, "browser-call-2", "+15550199999")
    page = page_as("auditor")
    page.goto(console_server.base_url + "/recordings")
    page.fill("input[name=number]", "555 010 0123")
    page.click("form.search button[type=submit]")
    rows = page.locator("table.calls tbody tr")
    assert rows.count() == 1 and "browser-call-1" in rows.first.inner_text()
    assert CALLER not in page.content()
    screenshot(page, "recordings-search")
    page.click("text=browser-call-1")
    page.wait_for_url("**/recordings/browser-call-1")
    assert page.locator("#verification").inner_text() == "verified"
    assert page.locator(".lane svg path").count() == 2
    page.wait_for_function("document.getElementById('audio').readyState >= 1")
    assert abs(page.evaluate("document.getElementById('audio').duration") - 4.0) < 0.05
    page.click("li.turn.caller")  # seeks to 2.0 s and plays
    page.wait_for_function(
        "document.getElementById('audio').currentTime > 2.05 && "
        "document.querySelector('li.turn.caller').classList.contains('current')"
    )
    first = page.evaluate("document.getElementById('audio').currentTime")
    page.wait_for_function(f"document.getElementById('audio').currentTime > {first} + 0.2")
    assert page.locator("li.turn.current").count() == 1
    screenshot(page, "recordings-call")
    engine = open_index_database(console_server.database_url, DatabaseSettings())
    actions = {(e.action, e.call_ids) for e in read_access_log(engine)}
    assert {
        ("search", ("browser-call-1",)),
        ("show", ("browser-call-1",)),
        ("play", ("browser-call-1",)),
    } <= actions


def test_a_manager_cannot_open_a_call_and_sees_none_of_it(
    console_server: ConsoleServer, page_as: Callable[..., Page]
) -> None:
    seal_call(console_server, "browser-call-3", CALLER)
    page = page_as("manager")
    answer = page.goto(console_server.base_url + "/recordings/browser-call-3")
    assert answer is not None and answer.status == 403
    assert "cancel my card" not in page.content() and "audio" not in page.locator("main").inner_html()
    audio = page.request.get(console_server.base_url + "/recordings/browser-call-3/audio")
    assert audio.status == 403 and b"RIFF" not in audio.body()
