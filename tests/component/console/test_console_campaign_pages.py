"""The console over SQLite and PostgreSQL: login, CSRF, roles, and the campaign pages."""

from __future__ import annotations

import csv
import io
import os
import stat
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.testclient import TestClient

from console.web import ConsoleContext
from dialer.hourly_counters import count_change
from dialer.models import Attempt, Campaign, Contact, utcnow
from tests.component.console.conftest import BACKENDS, PASSWORD, csrf_of, log_in

FLOW = "flows/library/compliance_callback.yaml"
LIST = (
    "phone,first_name,cooling_off_end,product\n"
    '+14155550100,Ann,2031-01-01T10:00:00+00:00,=HYPERLINK("x")\n'
    "not-a-number,Bob,2031-01-01T10:00:00+00:00,Fund A\n"
    "+14155550101,Cy,someday,Fund A\n"
    "+14155550102,Di,2031-01-01T10:00:00+00:00,Fund B\n"
)


def upload(client: TestClient, name: str = "june", text: str = LIST, **fields: str) -> httpx.Response:
    token = csrf_of(client.get("/campaigns").text)
    data = {"csrf": token, "name": name, "kind": "compliance_callback", "flow": FLOW, **fields}
    response: httpx.Response = client.post(
        "/campaigns/import", data=data, files={"file": ("list.csv", text, "text/csv")}
    )
    return response


@pytest.mark.parametrize("console_db_url", BACKENDS, indirect=True)
def test_login_logout_and_wrong_password(
    client_as: Callable[..., TestClient], console_app: Starlette
) -> None:
    manager = client_as("manager", name="mia")
    assert manager.get("/campaigns").status_code == 200
    cookie = manager.cookies.get("ivr_console")
    assert cookie
    token = csrf_of(manager.get("/campaigns").text)
    assert manager.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert manager.get("/campaigns", follow_redirects=False).headers["location"] == "/login?next=/campaigns"
    stranger = TestClient(console_app)
    token = csrf_of(stranger.get("/login").text)
    wrong = stranger.post("/login", data={"name": "mia", "password": "nope nope nope", "csrf": token})
    assert wrong.status_code == 401
    assert "Wrong name or password." in wrong.text
    assert "nope nope" not in wrong.text


def test_login_is_throttled_after_five_failures(
    client_as: Callable[..., TestClient], console_app: Starlette
) -> None:
    client_as("manager", name="max")
    client = TestClient(console_app)
    token = csrf_of(client.get("/login").text)
    codes = [
        client.post("/login", data={"name": "max", "password": f"wrong-{i}-guess", "csrf": token}).status_code
        for i in range(6)
    ]
    assert codes == [401] * 5 + [429]
    right = client.post("/login", data={"name": "max", "password": PASSWORD, "csrf": token})
    assert right.status_code == 429  # locked even with the right password, until the lockout ends


@pytest.mark.parametrize("console_db_url", BACKENDS, indirect=True)
def test_csrf_refused_even_when_logged_in(
    client_as: Callable[..., TestClient], console_context: ConsoleContext
) -> None:
    manager = client_as("manager")
    upload(manager)
    refused = manager.post("/campaigns/june/start", data={})
    assert refused.status_code == 403
    with Session(console_context.engine) as session:
        assert session.scalar(select(Campaign.state).where(Campaign.name == "june")) == "draft"


@pytest.mark.parametrize("console_db_url", BACKENDS, indirect=True)
def test_upload_shows_rejected_rows_by_row_and_field(client_as: Callable[..., TestClient]) -> None:
    manager = client_as("manager")
    page = manager.get("/campaigns").text
    assert "cooling_off_end" in page and "required" in page  # the columns are documented on the page
    response = upload(manager)
    assert response.status_code == 200
    html = response.text
    assert '<div class="value" id="imported">2</div>' in html
    assert '<div class="value" id="rejected">2</div>' in html
    assert '<td class="num">3</td><td>phone</td>' in html
    assert '<td class="num">4</td><td>cooling_off_end</td>' in html


def test_bad_form_field_is_named_and_nothing_is_imported(
    client_as: Callable[..., TestClient], console_context: ConsoleContext
) -> None:
    manager = client_as("manager")
    response = upload(manager, hours="9 to 5")
    assert response.status_code == 400
    assert "hours: &#39;9 to 5&#39;: expected HH:MM-HH:MM" in response.text
    with Session(console_context.engine) as session:
        assert session.scalar(select(Campaign.id)) is None


def test_start_pause_resume_and_the_wallboard(
    client_as: Callable[..., TestClient], console_context: ConsoleContext
) -> None:
    manager = client_as("manager")
    upload(manager)
    board = manager.get("/campaigns/june").text
    assert 'id="board-state">draft<' in board and "Attempts per hour" in board
    for action, state in (("start", "running"), ("pause", "paused"), ("resume", "running")):
        token = csrf_of(manager.get("/campaigns/june").text)
        assert manager.post(f"/campaigns/june/{action}", data={"csrf": token}).status_code == 200
        with Session(console_context.engine) as session:
            assert session.scalar(select(Campaign.state).where(Campaign.name == "june")) == state
    with Session(console_context.engine, expire_on_commit=False) as session, session.begin():
        contact = session.scalars(select(Contact).order_by(Contact.id)).first()
        assert contact is not None
        now = utcnow()
        attempt = Attempt(
            contact_id=contact.id,
            started_at=now,
            invite_at=now,
            answered_at=now + timedelta(seconds=3),
            ended_at=now + timedelta(seconds=40),
            sip_status=200,
            result="answered",
            flow_outcome="confirmed",
            worker="w1",
            recording_id="call-123",
        )
        session.add(attempt)
        session.flush()
        count_change(session, contact, {attempt.id: None})  # what the dialer's store does
        session.execute(
            update(Contact)
            .where(Contact.id == contact.id)
            .values(state="done", outcome="confirmed", attempts=1, outcome_at=now)
        )
    fragment = manager.get("/campaigns/june/board").text
    assert '<div class="value" id="attempts">1</div>' in fragment
    assert '<td>confirmed</td><td class="num">1</td>' in fragment
    history = manager.get(f"/campaigns/june/contacts/{contact.id}").text
    assert 'href="/recordings/call-123"' in history and "confirmed" in history


def test_contacts_are_paged_and_masked(client_as: Callable[..., TestClient]) -> None:
    manager = client_as("manager")
    rows = "".join(f"+1415555{n:04d},P{n},2031-01-01T10:00:00+00:00\n" for n in range(120))
    upload(manager, name="big", text="phone,first_name,cooling_off_end\n" + rows)
    first = manager.get("/campaigns/big/contacts").text
    assert "120 contacts" in first
    assert first.count("/campaigns/big/contacts/") == 50
    assert "+14155550000" not in first  # numbers are masked in the list
    after = first.split('id="next-page" href="?after=')[1].split('"')[0]
    second = manager.get(f"/campaigns/big/contacts?after={after}").text
    assert second.count("/campaigns/big/contacts/") == 50
    assert manager.get("/campaigns/big/contacts?after=x").status_code == 400
    assert manager.get("/campaigns/big/contacts?state=bogus").status_code == 400


def test_export_escapes_formulas(client_as: Callable[..., TestClient]) -> None:
    manager = client_as("manager")
    upload(manager)
    response = manager.get("/campaigns/june/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2
    assert rows[0]["product"].startswith("'=")


REFUSED = {
    "auditor": [
        ("GET", "/campaigns"),
        ("GET", "/campaigns/june"),
        ("GET", "/campaigns/june/board"),
        ("GET", "/campaigns/june/events"),
        ("GET", "/campaigns/june/contacts"),
        ("GET", "/campaigns/june/contacts/1"),
        ("GET", "/campaigns/june/export.csv"),
        ("POST", "/campaigns/june/start"),
        ("POST", "/campaigns/import"),
    ],
    "supervisor": [
        ("POST", "/campaigns/june/start"),
        ("POST", "/campaigns/june/pause"),
        ("POST", "/campaigns/import"),
    ],
}


@pytest.mark.parametrize("console_db_url", BACKENDS, indirect=True)
def test_wrong_role_gets_403_and_no_data(client_as: Callable[..., TestClient]) -> None:
    upload(client_as("manager"))
    for role, requests in REFUSED.items():
        other = client_as(role)
        token = csrf_of(other.get("/login").text)
        for method, path in requests:
            response = other.request(method, path, data={"csrf": token} if method == "POST" else None)
            assert response.status_code == 403, (role, method, path)
            assert "june" not in response.text and "Ann" not in response.text


def test_supervisor_sees_campaigns_but_cannot_run_them(client_as: Callable[..., TestClient]) -> None:
    upload(client_as("manager"))
    supervisor = client_as("supervisor")
    page = supervisor.get("/campaigns/june").text
    assert "june" in page and 'id="start"' not in page
    assert "New campaign" not in supervisor.get("/campaigns").text


def test_disabled_user_is_out_at_the_next_click(
    client_as: Callable[..., TestClient], console_context: ConsoleContext
) -> None:
    manager = client_as("manager", name="dan")
    assert manager.get("/campaigns").status_code == 200
    console_context.users.disable("dan")
    assert manager.get("/campaigns", follow_redirects=False).status_code == 303


def test_session_cookie_and_secret_file(console_app: Starlette, console_context: ConsoleContext) -> None:
    console_context.users.add("sue", "manager", PASSWORD, utcnow())
    client = TestClient(console_app)
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login", data={"name": "sue", "password": PASSWORD, "csrf": token}, follow_redirects=False
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    secure = TestClient(console_app, base_url="https://testserver")
    log_in(secure, "sue")
    assert any(c.secure for c in secure.cookies.jar)
    key = console_context.settings.data_path / "console-secret.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
