"""HTTP intake on a real uvicorn server (a free port on 127.0.0.1) with an httpx client, on
SQLite and PostgreSQL: the answers, hostile requests storing nothing, the rate limit, the
token never logged, HTTPS, start-up checks, and a running dialer woken by a new contact."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from config.settings import IntakeSettings, Settings
from dialer.call_result import CallResult
from dialer.db import make_engine
from dialer.intake import AddedContact
from dialer.intake_app import create_app
from dialer.intake_http import IntakeConfigError, start_intake
from dialer.intake_server import IntakeHttpServer
from dialer.models import CampaignState, Contact, ContactEvent, EventKind
from dialer.pacing import Pacer
from dialer.store import DialerStore
from dialer.worker import CallReport, CallRequest, DialerWorker, SystemClock, WorkerConfig
from tests.component.dialer.dialer_data_helpers import ALWAYS_OPEN, T0, add_contacts, make_campaign
from tests.component.test_mqtt_tls import make_certificates

pytestmark = pytest.mark.component
TOKEN = "intake-test-token-7f3a9c2e51"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}
NUMBER = "+8613812345678"
GOOD = {"phone": "13812345678", "cooling_off_end": "2025-03-03T10:00:00+08:00", "request_id": "r-1"}

Scenario = Callable[[httpx.AsyncClient, IntakeHttpServer], Awaitable[None]]


def run_server(
    engine: Engine,
    scenario: Scenario,
    *,
    now: datetime = T0,
    on_added: Callable[[AddedContact], None] | None = None,
    scheme: str = "http",
    verify: ssl.SSLContext | bool = False,
    **options: Any,
) -> None:
    certfile, keyfile = options.pop("certfile", ""), options.pop("keyfile", "")

    async def main() -> None:
        app = create_app(engine, [TOKEN.encode()], on_added=on_added, clock=lambda: now, **options)
        server = IntakeHttpServer(app, "127.0.0.1", 0, certfile=certfile, keyfile=keyfile)
        await server.start()
        try:
            base = f"{scheme}://127.0.0.1:{server.port}"
            async with httpx.AsyncClient(base_url=base, timeout=10, verify=verify) as client:
                await scenario(client, server)
        finally:
            await server.aclose()

    asyncio.run(main())


def stored(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        contacts = session.scalar(select(func.count()).select_from(Contact)) or 0
        events = session.scalar(select(func.count()).select_from(ContactEvent)) or 0
    return contacts, events


def test_dialer_intake_http_adds_a_contact(engine: Engine) -> None:
    make_campaign(engine, calling_hours=ALWAYS_OPEN)
    added: list[AddedContact] = []

    async def scenario(client: httpx.AsyncClient, _: IntakeHttpServer) -> None:
        health = await client.get("/v1/health")
        assert health.status_code == 200 and health.json() == {"status": "ok", "database": "up"}
        created = await client.post("/v1/campaigns/march/contacts", json=GOOD, headers=AUTH)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["status"] == "created" and body["request_id"] == "r-1"
        assert body["phone"] == NUMBER and body["next_attempt_at"] == "2025-03-03T06:00:00Z"
        assert body["deadline"] == "2025-03-04T02:00:00Z" and body["dialable_now"] is True
        assert created.headers["cache-control"] == "no-store"
        again = await client.post("/v1/campaigns/march/contacts", json=GOOD, headers=AUTH)
        assert again.status_code == 200 and again.json()["status"] == "unchanged"
        assert again.json()["contact_id"] == body["contact_id"]
        other = await client.post(
            "/v1/campaigns/march/contacts", json={**GOOD, "first_name": "Other"}, headers=AUTH
        )
        assert other.status_code == 409 and other.json()["status"] == "duplicate"
        assert other.json()["contact_id"] == body["contact_id"]

    run_server(engine, scenario, on_added=added.append)
    assert [a.phone for a in added] == [NUMBER]  # once: the repeat stored nothing
    with Session(engine) as session:
        event = session.scalars(select(ContactEvent)).one()
    assert (event.kind, event.detail) == (EventKind.IMPORTED, "intake http")


def test_dialer_intake_http_a_failing_wake_up_costs_nothing(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    make_campaign(engine, calling_hours=ALWAYS_OPEN)

    def broken(_: AddedContact) -> None:
        raise RuntimeError("dialer gone")

    async def scenario(client: httpx.AsyncClient, _: IntakeHttpServer) -> None:
        created = await client.post("/v1/campaigns/march/contacts", json=GOOD, headers=AUTH)
        assert created.status_code == 201

    run_server(engine, scenario, on_added=broken)
    assert stored(engine) == (1, 1)
    failed = [r for r in caplog.records if r.getMessage() == "intake.on_added_failed"]
    assert failed and "RuntimeError at" in getattr(failed[0], "fields", {})["error"]


def test_dialer_intake_http_campaign_answers(engine: Engine) -> None:
    make_campaign(engine, "finished", state=CampaignState.FINISHED)
    make_campaign(engine, "draft", state=CampaignState.DRAFT)

    async def scenario(client: httpx.AsyncClient, _: IntakeHttpServer) -> None:
        for path, code, status in (
            ("/v1/campaigns/nope/contacts", 404, "campaign_not_found"),
            ("/v1/campaigns/finished/contacts", 409, "campaign_not_running"),
            ("/v1/campaigns/draft/contacts", 409, "campaign_not_running"),
            ("/v1/campaigns/a%00b/contacts", 404, "campaign_not_found"),
            ("/v1/campaigns/" + "x" * 300 + "/contacts", 404, "campaign_not_found"),
            ("/v1/campaigns/march/contacts/extra", 404, "not_found"),
            ("/v2/anything", 404, "not_found"),
        ):
            response = await client.post(path, json=GOOD, headers=AUTH)
            assert (response.status_code, response.json()["status"]) == (code, status), path
        wrong_method = await client.get("/v1/campaigns/march/contacts", headers=AUTH)
        assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"

    run_server(engine, scenario)
    assert stored(engine) == (0, 0)


async def _chunks(total: int, size: int = 4096) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def test_dialer_intake_http_hostile_requests_store_nothing(engine: Engine) -> None:
    make_campaign(engine, calling_hours=ALWAYS_OPEN)
    url = "/v1/campaigns/march/contacts"
    good = b'{"phone": "13812345678", "cooling_off_end": "2025-03-03T10:00:00+08:00"}'
    cases: list[tuple[dict[str, str], bytes, int, str]] = [
        ({}, good, 401, "unauthorized"),
        ({"Authorization": "Bearer wrong-token-0123456789"}, good, 401, "unauthorized"),
        ({"Authorization": f"Basic {TOKEN}"}, good, 401, "unauthorized"),
        ({"Authorization": f"Bearer {TOKEN} extra"}, good, 401, "unauthorized"),
        ({"Authorization": TOKEN}, good, 401, "unauthorized"),
        (AUTH, good, 415, "unsupported_media_type"),
        ({**AUTH, "Content-Type": "text/plain"}, good, 415, "unsupported_media_type"),
        ({**AUTH, "Content-Type": "application/json; charset=utf-16"}, good, 415, "unsupported_media_type"),
        ({**AUTH, **JSON}, b"", 400, "malformed"),
        ({**AUTH, **JSON}, b"{not json", 400, "malformed"),
        ({**AUTH, **JSON}, b"\xff\xfe\x00", 400, "malformed"),
        ({**AUTH, **JSON}, b'{"phone": "1", "phone": "2"}', 400, "malformed"),
        ({**AUTH, **JSON}, b"[" * 8000 + b"]" * 8000, 400, "malformed"),
        ({**AUTH, **JSON}, b'{"priority": NaN, "phone": "13812345678"}', 400, "malformed"),
        ({**AUTH, **JSON}, b"[]", 422, "invalid"),
        ({**AUTH, **JSON}, b'{"phone": 13812345678}', 422, "invalid"),
        ({**AUTH, **JSON}, good[:-1] + b', "admin": true}', 422, "invalid"),
        ({**AUTH, **JSON}, good[:-1] + b', "first_name": "a\\u0000b"}', 422, "invalid"),
        ({**AUTH, **JSON}, good[:-1] + b', "fields": {"x": "\\ud83d"}}', 422, "invalid"),
        ({**AUTH, **JSON}, good[:-1] + b', "fields": {"x": {"y": 1}}}', 422, "invalid"),
        ({**AUTH, **JSON}, good[:-1] + b', "priority": "high"}', 422, "invalid"),
        ({**AUTH, **JSON}, b'{"phone": "1234"}', 422, "invalid"),
        ({**AUTH, **JSON}, b'{"phone": "' + b"9" * 17000 + b'"}', 413, "too_large"),
    ]

    async def scenario(client: httpx.AsyncClient, _: IntakeHttpServer) -> None:
        for headers, content, code, status in cases:
            response = await client.post(url, content=content, headers=headers)
            assert (response.status_code, response.json()["status"]) == (code, status), (
                headers,
                content[:60],
            )
            if code == 401:
                assert response.headers["www-authenticate"].startswith('Bearer realm="ivr-intake"')
        invalid = await client.post(
            url, content=good[:-1] + b', "priority": "high", "x": 1}', headers={**AUTH, **JSON}
        )
        assert {p["field"] for p in invalid.json()["problems"]} == {"priority", "x"}
        # A chunked body (no Content-Length) is cut off once it passes the limit.
        chunked = await client.post(url, content=_chunks(64 * 1024), headers={**AUTH, **JSON})
        assert chunked.status_code == 413
        # Far beyond it, the answer may be a closed connection, but nothing is stored either way.
        with pytest.raises(httpx.TransportError):
            huge = await client.post(url, content=_chunks(8 * 1024 * 1024), headers={**AUTH, **JSON})
            assert huge.status_code == 413
            raise httpx.TransportError("answered 413")
        health = await client.get("/v1/health")
        assert health.status_code == 200

    run_server(engine, scenario)
    assert stored(engine) == (0, 0)


def test_dialer_intake_http_rate_limit(engine: Engine) -> None:
    make_campaign(engine, calling_hours=ALWAYS_OPEN)

    async def scenario(client: httpx.AsyncClient, _: IntakeHttpServer) -> None:
        codes = [
            (await client.post("/v1/campaigns/march/contacts", headers=AUTH)).status_code for _ in range(3)
        ]
        assert codes == [415, 415, 429]  # wrong requests count too: guessing tokens costs the same
        limited = await client.get("/v1/health")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["status"] == "rate_limited"

    run_server(engine, scenario, requests_per_s=0.5, burst=2)


def test_dialer_intake_http_never_logs_the_token_or_the_number(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    make_campaign(engine, calling_hours=ALWAYS_OPEN)
    caplog.set_level(logging.DEBUG)

    async def scenario(client: httpx.AsyncClient, _: IntakeHttpServer) -> None:
        await client.post("/v1/campaigns/march/contacts", json=GOOD, headers=AUTH)
        await client.post("/v1/campaigns/march/contacts", json={**GOOD, "phone": "1381234567"}, headers=AUTH)
        await client.post(
            "/v1/campaigns/march/contacts", json=GOOD, headers={"Authorization": "Bearer " + TOKEN[:-1]}
        )

    run_server(engine, scenario)
    logged = " ".join(f"{r.getMessage()} {getattr(r, 'fields', {})}" for r in caplog.records)
    assert "intake.created" in logged and "intake.refused" in logged and "intake.unauthorized" in logged
    assert TOKEN[:12] not in logged and "13812345678" not in logged and "1381234567" not in logged


def test_dialer_intake_http_health_says_when_the_database_is_down() -> None:
    dead = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")

    async def scenario(client: httpx.AsyncClient, _: IntakeHttpServer) -> None:
        health = await client.get("/v1/health")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        add = await client.post("/v1/campaigns/march/contacts", json=GOOD, headers=AUTH)
        assert add.status_code == 503 and add.json()["status"] == "unavailable"

    try:
        run_server(dead, scenario)
    finally:
        dead.dispose()


def test_dialer_intake_http_over_tls(engine: Engine, tmp_path: Path) -> None:
    try:
        make_certificates(tmp_path)
    except FileNotFoundError:
        pytest.skip("openssl is not installed")
    make_campaign(engine, calling_hours=ALWAYS_OPEN)
    trust = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))

    async def scenario(client: httpx.AsyncClient, server: IntakeHttpServer) -> None:
        assert server.tls
        created = await client.post("/v1/campaigns/march/contacts", json=GOOD, headers=AUTH)
        assert created.status_code == 201
        async with httpx.AsyncClient(timeout=5) as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.post(f"http://127.0.0.1:{server.port}/v1/campaigns/march/contacts", json=GOOD)

    run_server(
        engine,
        scenario,
        scheme="https",
        verify=trust,
        certfile=str(tmp_path / "server.pem"),
        keyfile=str(tmp_path / "server.key"),
    )
    assert stored(engine) == (1, 1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_dialer_intake_http_start_checks_come_first(engine: Engine, tmp_path: Path) -> None:
    token_file = tmp_path / "intake-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)
    port = _free_port()

    async def main() -> None:
        with pytest.raises(IntakeConfigError, match="other users may read it"):
            await start_intake(
                Settings(intake=IntakeSettings(http_port=port, token_file=str(token_file))), engine
            )
        with pytest.raises(IntakeConfigError, match="no token"):
            await start_intake(Settings(intake=IntakeSettings(http_port=port)), engine)
        token_file.chmod(0o600)
        missing = tmp_path / "absent.pem"
        tls = IntakeSettings(http_port=port, token_file=str(token_file), tls_cert_file=str(missing))
        with pytest.raises(IntakeConfigError, match="cannot load the certificate"):
            await start_intake(Settings(intake=tls), engine)
        settings = Settings(intake=IntakeSettings(http_port=port, token_file=str(token_file)))
        services = await start_intake(settings, engine)
        try:
            assert services.http is not None and services.http.port == port and services.mqtt is None
            with pytest.raises(IntakeConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
                await start_intake(settings, engine)
            async with httpx.AsyncClient(timeout=5) as client:
                health = await client.get(f"http://127.0.0.1:{port}/v1/health")
                assert health.status_code == 200
        finally:
            await services.aclose()
        disabled = await start_intake(Settings(), engine)
        assert disabled.http is None and disabled.mqtt is None

    asyncio.run(main())


class _InstantPlacer:
    def __init__(self) -> None:
        self.placed: list[tuple[float, CallRequest]] = []
        self.called = asyncio.Event()

    async def place(self, request: CallRequest) -> CallReport:
        self.placed.append((asyncio.get_running_loop().time(), request))
        self.called.set()
        now = datetime.now(UTC)
        return CallReport(CallResult.ANSWERED_HUMAN, now, now, 200, "confirmed")


def test_dialer_intake_http_wakes_an_idle_dialer(engine: Engine) -> None:
    """The wiring run_dialer needs: ``on_added`` wakes the worker loops, so a contact added while
    they sleep (here a 60 s poll) is dialled at once instead of at the next poll."""
    cid = make_campaign(engine, kind="retention", calling_hours=ALWAYS_OPEN)
    # A contact due tomorrow keeps the campaign open: the store finishes a running campaign
    # with nothing left to dial, and a finished one takes no intake (409).
    add_contacts(engine, cid, 1, start=datetime.now(UTC) + timedelta(days=1))
    placer = _InstantPlacer()
    worker = DialerWorker(
        DialerStore(engine),
        Pacer(2, 10.0),
        placer,
        SystemClock(),
        WorkerConfig(owner="w1", poll_interval_s=60.0, housekeeping_interval_s=600.0),
    )

    def wake(_: AddedContact) -> None:
        worker.wake()

    async def scenario(client: httpx.AsyncClient, _: IntakeHttpServer) -> None:
        stop = asyncio.Event()
        loop_task = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.5)  # the worker found nothing and sleeps for 60 s
        sent = asyncio.get_running_loop().time()
        response = await client.post(
            "/v1/campaigns/march/contacts", json={"phone": "+14155550123"}, headers=AUTH
        )
        assert response.status_code == 201 and response.json()["dialable_now"] is True
        async with asyncio.timeout(5):
            await placer.called.wait()
        stop.set()
        await loop_task
        placed_at, request = placer.placed[0]
        assert request.number == "+14155550123" and request.contact_id == response.json()["contact_id"]
        assert placed_at - sent < 2.0

    run_server(engine, scenario, now=datetime.now(UTC), on_added=wake)
    with Session(engine) as session:
        contact = session.scalars(select(Contact).where(Contact.phone == "+14155550123")).one()
    assert (contact.state, contact.outcome) == ("done", "confirmed")
    assert T0 < contact.next_attempt_at < datetime.now(UTC) + timedelta(seconds=1)
