"""MQTT intake against a real Mosquitto (127.0.0.1:1883; and the TLS broker that
tests/component/test_mqtt_tls.py starts), on SQLite and PostgreSQL: a request published, its
answer read from the result topic, the contact in the database."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from config.settings import IntakeSettings, MqttSettings, Settings
from dialer.intake import AddedContact
from dialer.intake_http import start_intake
from dialer.intake_mqtt import MqttIntake
from dialer.models import Contact, ContactEvent, EventKind
from ivr.event_publisher import EventPublishError
from tests.component.dialer.dialer_data_helpers import ALWAYS_OPEN, T0, make_campaign
from tests.component.test_mqtt_tls import PASSWORD, USER, Broker, broker  # noqa: F401 (a fixture)

pytestmark = pytest.mark.component
HOST, PORT = "127.0.0.1", 1883
CALLBACK = {"cooling_off_end": "2025-03-03T10:00:00+08:00"}


@pytest.fixture
def plain_broker() -> None:
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Mosquitto is not reachable at {HOST}:{PORT}: {exc}")
        pytest.skip(f"Mosquitto is not reachable at {HOST}:{PORT}: {exc}")


def settings_for(prefix: str) -> MqttSettings:
    return MqttSettings(host=HOST, port=PORT, topic_prefix=prefix)


Exchange = Callable[[list[bytes]], Awaitable[list[dict[str, Any]]]]


async def exchange(
    mqtt: MqttSettings,
    campaign: str,
    payloads: list[bytes],
    *,
    expect: int | None = None,
    client_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Publish ``payloads`` to the campaign's intake topic; the answers, in arrival order."""
    base = f"{mqtt.topic_prefix}/dialer/intake"
    options = client_options or {}
    answers: list[dict[str, Any]] = []
    async with aiomqtt.Client(mqtt.host, mqtt.port, identifier=f"req-{uuid.uuid4().hex[:8]}", **options) as c:
        await c.subscribe(f"{base}/+/result", qos=1)
        for payload in payloads:
            await c.publish(f"{base}/{campaign}", payload, qos=1)
        async with asyncio.timeout(15):
            async for message in c.messages:
                assert str(message.topic) == f"{base}/{campaign}/result"
                assert message.qos == 1 and not message.retain
                assert isinstance(message.payload, bytes)
                answers.append(json.loads(message.payload))
                if len(answers) == (expect if expect is not None else len(payloads)):
                    break
    return answers


def run_intake(
    engine: Engine,
    mqtt: MqttSettings,
    scenario: Callable[[MqttIntake], Awaitable[None]],
    *,
    intake: IntakeSettings | None = None,
    on_added: Callable[[AddedContact], None] | None = None,
) -> None:
    async def main() -> None:
        subscriber = MqttIntake(
            mqtt, intake or IntakeSettings(mqtt=True), engine, on_added=on_added, clock=lambda: T0
        )
        subscriber.start()
        try:
            async with asyncio.timeout(10):
                await subscriber.subscribed.wait()
            await scenario(subscriber)
        finally:
            await subscriber.aclose()

    asyncio.run(main())


def test_dialer_intake_mqtt_answers_every_request(engine: Engine, plain_broker: None) -> None:
    make_campaign(engine, calling_hours=ALWAYS_OPEN)
    mqtt = settings_for(f"test-{uuid.uuid4().hex[:10]}/ivr")
    added: list[AddedContact] = []
    requests = [
        json.dumps({"phone": "13812345678", **CALLBACK, "request_id": "ok-1", "fields": {"product": "A"}}),
        json.dumps(
            {"phone": "+86 138 1234 5678", **CALLBACK, "request_id": "again", "fields": {"product": "A"}}
        ),
        json.dumps({"phone": "12345", **CALLBACK, "request_id": "bad-number"}),
        json.dumps({"phone": "13912345678", "request_id": "no-deadline"}),
        json.dumps({"phone": 13912345678, "evil": "\u0000", "request_id": "types"}),
        "{not json",
        json.dumps({"phone": "13912345678", **CALLBACK, "request_id": "big", "first_name": "x" * 20000}),
    ]
    answers: list[dict[str, Any]] = []

    async def scenario(_: MqttIntake) -> None:
        answers.extend(await exchange(mqtt, "march", [r.encode() for r in requests]))
        answers.extend(await exchange(mqtt, "nope", [json.dumps({"phone": "1", "request_id": "x"}).encode()]))

    run_intake(engine, mqtt, scenario, on_added=added.append)
    by_id = {a.get("request_id"): a for a in answers}
    created = by_id["ok-1"]
    assert (created["status"], created["code"], created["campaign"]) == ("created", 201, "march")
    assert created["phone"] == "+***********78" and created["next_attempt_at"] == "2025-03-03T06:00:00Z"
    assert created["ts"].endswith("Z")
    assert (by_id["again"]["status"], by_id["again"]["code"]) == ("unchanged", 200)
    assert by_id["again"]["contact_id"] == created["contact_id"]
    assert (by_id["bad-number"]["code"], by_id["bad-number"]["problems"][0]["field"]) == (422, "phone")
    assert by_id["no-deadline"]["problems"] == [
        {"field": "cooling_off_end", "reason": "missing (required for compliance callbacks)"}
    ]
    assert {p["field"] for p in by_id["types"]["problems"]} == {"phone", "evil"}
    anonymous = sorted((a["status"], a["code"]) for a in answers if "request_id" not in a)
    assert anonymous == [("malformed", 400), ("too_large", 413)]  # not read, so no id to echo
    assert (by_id["x"]["status"], by_id["x"]["code"], by_id["x"]["campaign"]) == (
        "campaign_not_found",
        404,
        "nope",
    )
    raw = json.dumps(answers)
    assert "13812345678" not in raw and "12345'" not in raw  # numbers are masked, reasons too
    assert [a.contact_id for a in added] == [created["contact_id"]]
    with Session(engine) as session:
        contacts = list(session.scalars(select(Contact)))
        events = [(e.kind, e.detail) for e in session.scalars(select(ContactEvent))]
    assert [(c.phone, c.fields) for c in contacts] == [("+8613812345678", {"product": "A"})]
    assert events == [(EventKind.IMPORTED, "intake mqtt")]


def test_dialer_intake_mqtt_shared_subscription_answers_once(engine: Engine, plain_broker: None) -> None:
    """Two dialer processes in one share group: each request is stored and answered once."""
    make_campaign(engine, calling_hours=ALWAYS_OPEN)
    mqtt = settings_for(f"test-{uuid.uuid4().hex[:10]}/ivr")
    group = IntakeSettings(mqtt=True, mqtt_share_group=f"g{uuid.uuid4().hex[:8]}")
    numbers = [f"1381234{n:04d}" for n in range(8)]
    payloads = [json.dumps({"phone": n, **CALLBACK, "request_id": n}).encode() for n in numbers]

    async def main() -> list[dict[str, Any]]:
        subscribers = [MqttIntake(mqtt, group, engine, clock=lambda: T0) for _ in range(2)]
        for s in subscribers:
            s.start()
        try:
            async with asyncio.timeout(10):
                await asyncio.gather(*(s.subscribed.wait() for s in subscribers))
            answers = await exchange(mqtt, "march", payloads)
            await asyncio.sleep(0.5)  # a second answer to any request would arrive by now
            assert sum(s.answered for s in subscribers) == len(payloads)
            return answers
        finally:
            for s in subscribers:
                await s.aclose()

    answers = asyncio.run(main())
    assert sorted(a["request_id"] for a in answers) == sorted(numbers)
    assert {a["status"] for a in answers} == {"created"}
    with Session(engine) as session:
        assert len(list(session.scalars(select(Contact)))) == len(numbers)


def test_dialer_intake_mqtt_started_with_the_http_side(engine: Engine, plain_broker: None) -> None:
    make_campaign(engine, calling_hours=ALWAYS_OPEN)
    mqtt = settings_for(f"test-{uuid.uuid4().hex[:10]}/ivr")
    settings = Settings(mqtt=mqtt, intake=IntakeSettings(mqtt=True))

    async def main() -> list[dict[str, Any]]:
        services = await start_intake(settings, engine, clock=lambda: T0)
        try:
            assert services.http is None and services.mqtt is not None
            async with asyncio.timeout(10):
                await services.mqtt.subscribed.wait()
            return await exchange(mqtt, "march", [json.dumps({"phone": "13812345678", **CALLBACK}).encode()])
        finally:
            await services.aclose()

    assert asyncio.run(main())[0]["status"] == "created"


@pytest.mark.parametrize("client_cert", [False, True])
def test_dialer_intake_mqtt_over_tls_with_a_password(
    engine: Engine,
    broker: Broker,  # noqa: F811
    client_cert: bool,
) -> None:
    """The intake subscriber logs in like the event publisher: TLS, CA, user, password, and a
    client certificate where the broker requires one."""
    make_campaign(engine, calling_hours=ALWAYS_OPEN)
    client = (str(broker.certs / "client.pem"), str(broker.certs / "client.key"))
    changes: dict[str, Any] = {"enabled": False, "on_unreachable": "buffer"}
    if client_cert:
        changes.update(cert_file=client[0], key_file=client[1])
    mqtt = broker.settings(broker.mtls_port if client_cert else broker.tls_port, **changes)
    context = ssl.create_default_context(cafile=str(broker.certs / "ca.pem"))
    if client_cert:
        context.load_cert_chain(*client)
    answers: list[dict[str, Any]] = []

    async def scenario(_: MqttIntake) -> None:
        options = {"username": USER, "password": PASSWORD, "tls_context": context}
        payload = json.dumps({"phone": "13812345678", **CALLBACK, "request_id": "tls"}).encode()
        answers.extend(await exchange(mqtt, "march", [payload], client_options=options))

    run_intake(engine, mqtt, scenario)
    assert answers[0]["status"] == "created" and answers[0]["request_id"] == "tls"


def test_dialer_intake_mqtt_broker_away(engine: Engine) -> None:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        dead = settings_for("unused")
        dead = replace(dead, port=int(probe.getsockname()[1]))

    async def main() -> None:
        subscriber = MqttIntake(dead, IntakeSettings(mqtt=True), engine, backoff_initial_s=0.05)
        await subscriber.check()  # on_unreachable: buffer does not check
        subscriber.start()
        await asyncio.sleep(0.3)
        assert not subscriber.subscribed.is_set()
        async with asyncio.timeout(5):
            await subscriber.aclose()  # stops at once, retrying or not
        failing = MqttIntake(replace(dead, on_unreachable="fail"), IntakeSettings(mqtt=True), engine)
        with pytest.raises(EventPublishError, match="did not accept the connection"):
            await failing.check()
        with pytest.raises(EventPublishError, match=r"mqtt\.ca_file is set but mqtt\.tls is false"):
            MqttIntake(replace(dead, ca_file="/x.pem"), IntakeSettings(mqtt=True), engine)

    asyncio.run(main())
