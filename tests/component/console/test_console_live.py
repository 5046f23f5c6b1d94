"""The live calls page and its supervise endpoint, in-process: who sees what, who may ask the
engine to ring their phone, and what happens when no engine can answer (still audited).

The engine's side (a real ``serve`` ringing a real phone) is test_console_live_supervise.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from console.live_pages import LiveFeed
from console.web import ConsoleContext
from recordings.access_log import read_access_log
from tests.component.console.conftest import csrf_of

CALL_ID = "20260302T100000-1a2b3c4d5e6f"


class FoldedFeed(LiveFeed):
    """The page's feed without its MQTT subscription (the browser test has the real broker):
    messages are folded in by the test, as the subscription would."""

    def ensure_started(self) -> None:
        self.status = "live"


@pytest.fixture(autouse=True)
def folded_feed(console_app: Starlette, console_context: ConsoleContext) -> LiveFeed:
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    feed = console_app.state.live_feed = FoldedFeed(
        replace(console_context.settings.mqtt, topic_prefix=prefix)
    )
    return feed


def fed_app(app: Starlette, context: ConsoleContext) -> LiveFeed:
    """The app's feed with one call folded in, as the MQTT events of docs/events.md would."""
    feed: LiveFeed = app.state.live_feed
    prefix = feed.settings.topic_prefix
    now = datetime.now(UTC)
    events = {
        "connected": b'{"direction": "inbound", "remote": "sip:*****67@x", "flow": "hotline", "ts": 1}',
        "step": b'{"step": "ask_reason", "at_s": 3.0, "ts": 1}',
        "transcript": b'{"speaker": "caller", "kind": "final", "text": "I want to cancel my contract",'
        b' "start_s": 4.0, "end_s": 5.5, "confidence": 0.9, "at": "x", "ts": 1}',
        "alert": b'{"rule": "cancel_words", "kind": "phrase", "severity": "high", "at_s": 5.5,'
        b' "evidence": "cancel", "ts": 1}',
    }
    for event, body in events.items():
        assert feed.fold(f"{prefix}/call/{CALL_ID}/{event}", body, now)
    return feed


def roster(context: ConsoleContext, text: str) -> Path:
    path = context.settings.data_path / "supervisors.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_a_supervisor_sees_the_call_and_the_buttons(
    console_app: Starlette, console_context: ConsoleContext, client_as: Callable[..., TestClient]
) -> None:
    fed_app(console_app, console_context)
    name = f"sup-{uuid.uuid4().hex[:6]}"
    roster(console_context, f'users:\n  {name}: {{sip_uris: ["sip:{name}@127.0.0.1:5999"]}}\n')
    page = client_as("supervisor", name=name).get("/live")
    assert page.status_code == 200
    html = page.text
    for shown in ("hotline", "ask_reason", "I want to cancel my contract", "cancel_words", "high"):
        assert shown in html
    assert html.count('class="supervise"') == 1
    assert all(f'value="{mode}"' in html for mode in ("listen", "barge", "takeover"))
    assert f"sip:{name}@127.0.0.1:5999" in html


def test_without_supervise_no_buttons_and_403(
    console_app: Starlette, console_context: ConsoleContext, client_as: Callable[..., TestClient]
) -> None:
    fed_app(console_app, console_context)
    viewer = client_as("auditor", grants=("live.view",))
    html = viewer.get("/live").text
    assert "I want to cancel my contract" in html and 'class="supervise"' not in html
    refused = viewer.post(
        "/live/supervise",
        data={"csrf": csrf_of(html), "call_id": CALL_ID, "mode": "listen"},
        headers={"accept": "application/json"},
    )
    assert refused.status_code == 403 and "supervise" in refused.text
    manager = client_as("manager")
    page = manager.get("/live")
    assert page.status_code == 403 and "cancel my contract" not in page.text
    token = csrf_of(manager.get("/campaigns").text)
    posted = manager.post("/live/supervise", data={"csrf": token, "call_id": CALL_ID, "mode": "barge"})
    assert posted.status_code == 403 and "cancel" not in posted.text
    entries = read_access_log(console_context.index_engine)
    assert [e for e in entries if e.action == "supervise"] == []


def test_a_post_without_csrf_is_refused(
    console_app: Starlette, console_context: ConsoleContext, client_as: Callable[..., TestClient]
) -> None:
    client = client_as("supervisor")
    answer = client.post("/live/supervise", data={"call_id": CALL_ID, "mode": "listen"})
    assert answer.status_code == 403 and "CSRF" in answer.text


def test_bad_fields_say_which(
    console_app: Starlette, console_context: ConsoleContext, client_as: Callable[..., TestClient]
) -> None:
    client = client_as("supervisor")
    token = csrf_of(client.get("/live").text)
    bad_mode = client.post("/live/supervise", data={"csrf": token, "call_id": CALL_ID, "mode": "spy"})
    assert bad_mode.status_code == 400 and "field mode: 'spy' is not one of listen, barge" in bad_mode.text
    bad_id = client.post("/live/supervise", data={"csrf": token, "call_id": "../x", "mode": "listen"})
    assert bad_id.status_code == 400 and "field call_id" in bad_id.text


def test_no_phone_and_no_engine_are_clear_and_audited(
    console_app: Starlette, console_context: ConsoleContext, client_as: Callable[..., TestClient]
) -> None:
    name = f"sup-{uuid.uuid4().hex[:6]}"
    client = client_as("supervisor", name=name)
    page = client.get("/live").text
    assert "no supervisor roster" in page
    token = csrf_of(page)
    form = {"csrf": token, "call_id": CALL_ID, "mode": "barge"}
    json_only = {"accept": "application/json"}
    no_phone = client.post("/live/supervise", data=form, headers=json_only)
    assert no_phone.status_code == 409 and "no supervisor roster" in no_phone.json()["message"]

    roster(console_context, f'users:\n  {name}: {{sip_uris: ["sip:{name}@pbx.example"]}}\n')
    other = client.post(
        "/live/supervise", data={**form, "uri": "sip:mallory@evil.example"}, headers=json_only
    )
    assert other.status_code == 409 and "is not a phone registered to" in other.json()["message"]
    no_engine = client.post("/live/supervise", data=form, headers=json_only)
    assert no_engine.status_code == 503
    assert no_engine.json()["message"].startswith("Barge not sent: no running serve under")

    # Without the script: back to /live, the outcome shown there once.
    plain = client.post("/live/supervise", data=form, follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == "/live"
    shown = client.get("/live").text
    assert 'class="refused">Barge not sent: no running serve' in shown
    assert "Barge not sent" not in client.get("/live").text

    rows = [e for e in read_access_log(console_context.index_engine) if e.action == "supervise"]
    assert [(e.actor, e.call_ids, e.tty) for e in rows] == [(name, (CALL_ID,), "console")] * 4
    assert all(e.detail["allowed"] is False and e.detail["via"] == "console" for e in rows)
    assert "evil.example" in rows[1].detail["decision"] and "mallory" not in str(rows[1].detail)
