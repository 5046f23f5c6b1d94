"""Events over TLS with a password and a client certificate, against a real Mosquitto this
test configures and starts itself (a CA, server and client certificates made with openssl).

Skipped when mosquitto, mosquitto_passwd or openssl is missing, except under CI=true.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiomqtt
import pytest

from config.errors import ConfigError
from config.settings import MqttSettings, load_settings
from ivr.event_publisher import (
    EventPublishError,
    MqttEventPublisher,
    call_topic,
    check_broker,
    create_publisher,
)

HOST = "127.0.0.1"
USER, PASSWORD = "ivr-events", "s3cret: #not-yaml"
pytestmark = pytest.mark.component


@dataclass(frozen=True)
class Broker:
    """A running Mosquitto: ``tls_port`` wants TLS + password, ``mtls_port`` also a client cert."""

    tls_port: int
    mtls_port: int
    certs: Path

    def settings(self, port: int, **changes: object) -> MqttSettings:
        base = MqttSettings(
            enabled=True,
            host=HOST,
            port=port,
            topic_prefix=f"test-{uuid.uuid4().hex[:10]}/ivr",
            tls=True,
            ca_file=str(self.certs / "ca.pem"),
            username=USER,
            password=PASSWORD,
            on_unreachable="fail",
        )
        return replace(base, **changes)  # type: ignore[arg-type]


def _tools() -> None:
    missing = [tool for tool in ("mosquitto", "mosquitto_passwd", "openssl") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"needed for the MQTT TLS tests: {', '.join(missing)}")
        pytest.skip(f"not installed: {', '.join(missing)}")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(folder: Path) -> None:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=ivr test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    for name, extensions in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        (folder / f"{name}.ext").write_text(extensions)
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=ivr-{name}",
                 cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=folder)
    # A second CA that signed nothing here: trusting it must fail verification.
    _openssl("req", "-x509", *ec, "-keyout", "other.key", "-out", "other.pem", "-days", "2",
             "-subj", "/CN=other CA", cwd=folder)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mosquitto exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"mosquitto did not listen on {port}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    _tools()
    folder = tmp_path_factory.mktemp("mqtt-tls")
    make_certificates(folder)
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(folder / "passwd"), USER, PASSWORD],
        check=True, capture_output=True, timeout=30,
    )
    tls_port, mtls_port = _free_port(), _free_port()
    tls = f"cafile {folder}/ca.pem\ncertfile {folder}/server.pem\nkeyfile {folder}/server.key\n"
    (folder / "mosquitto.conf").write_text(
        # Started as root, mosquitto would switch to its own user, who cannot read pytest's tmp.
        f"user {getpass.getuser()}\nper_listener_settings false\nallow_anonymous false\n"
        f"password_file {folder}/passwd\npersistence false\nlog_dest stderr\n"
        f"listener {tls_port} {HOST}\n{tls}"
        f"listener {mtls_port} {HOST}\n{tls}require_certificate true\n"
    )
    log = folder / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["mosquitto", "-c", str(folder / "mosquitto.conf")], stdout=out, stderr=out)
    try:
        _wait_for(tls_port, proc, log)
        _wait_for(mtls_port, proc, log)
        yield Broker(tls_port, mtls_port, folder)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _subscriber_tls(broker: Broker, client_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(broker.certs / "ca.pem"))
    if client_cert:
        context.load_cert_chain(str(broker.certs / "client.pem"), str(broker.certs / "client.key"))
    return context


def deliver(broker: Broker, settings: MqttSettings, client_cert: bool = False) -> dict[str, object]:
    """Publish one event through the publisher; what a subscriber on the same broker received."""

    async def scenario() -> dict[str, object]:
        async with aiomqtt.Client(
            HOST, settings.port, username=USER, password=PASSWORD,
            tls_context=_subscriber_tls(broker, client_cert), identifier=f"sub-{uuid.uuid4().hex[:8]}",
        ) as sub:
            await sub.subscribe(f"{settings.topic_prefix}/#", qos=1)
            publisher = create_publisher(settings)
            assert isinstance(publisher, MqttEventPublisher)
            publisher.start()
            event = {"outcome": "completed", "from": "+4915112345678"}
            publisher.publish(call_topic("call-1", "ended"), event)
            async with asyncio.timeout(10):
                message = await anext(aiter(sub.messages))
            await publisher.aclose()
            assert publisher.stats.published == 1
            assert isinstance(message.payload, bytes)
            return {"topic": str(message.topic), **json.loads(message.payload)}

    return asyncio.run(scenario())


def test_events_arrive_over_tls_with_a_password(broker: Broker) -> None:
    settings = broker.settings(broker.tls_port)
    body = deliver(broker, settings)
    assert body["topic"] == f"{settings.topic_prefix}/call/call-1/ended"
    assert body["outcome"] == "completed" and body["from"] == "+***********78"


def test_password_from_the_environment_or_a_file(broker: Broker, tmp_path: Path) -> None:
    env = {"IVR_MQTT__PASSWORD": PASSWORD, "IVR_MQTT__TLS": "true", "IVR_MQTT__USERNAME": USER}
    from_env = load_settings(env=env).mqtt
    assert from_env.password == PASSWORD  # taken literally: ':' and '#' are not YAML here
    assert PASSWORD not in repr(from_env)
    secret = tmp_path / "mqtt-password"
    secret.write_text(PASSWORD + "\n")
    settings = broker.settings(broker.tls_port, password="", password_file=str(secret))
    assert deliver(broker, settings)["outcome"] == "completed"


def test_a_password_in_the_config_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_text(f"mqtt:\n  username: {USER}\n  password: hunter2\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={})
    assert str(info.value) == (
        f"{config}:3: mqtt.password: a secret is not kept in a config file; "
        "set IVR_MQTT__PASSWORD or mqtt.password_file instead"
    )
    assert "hunter2" not in str(info.value)


def test_client_certificate_listener(broker: Broker) -> None:
    with_cert = broker.settings(
        broker.mtls_port,
        cert_file=str(broker.certs / "client.pem"),
        key_file=str(broker.certs / "client.key"),
    )
    assert deliver(broker, with_cert, client_cert=True)["outcome"] == "completed"
    with pytest.raises(EventPublishError, match="did not accept the connection"):
        check_broker(broker.settings(broker.mtls_port), timeout_s=3)


@pytest.mark.parametrize(
    ("case", "changes", "reason"),
    [
        ("wrong password", {"password": "not-it"}, "Not authori"),
        ("untrusted CA", {"ca_file": "other.pem"}, "CERTIFICATE_VERIFY_FAILED"),
        ("plain TCP to a TLS port", {"tls": False, "ca_file": ""}, ""),
    ],
)
def test_fail_mode_refuses_to_start_and_never_shows_the_password(
    broker: Broker, case: str, changes: dict[str, object], reason: str
) -> None:
    if changes.get("ca_file"):
        changes = {**changes, "ca_file": str(broker.certs / str(changes["ca_file"]))}
    settings = broker.settings(broker.tls_port, **changes)
    started = time.monotonic()
    with pytest.raises(EventPublishError) as info:
        create_publisher(settings, timeout_s=3)
    message = str(info.value)
    assert message.startswith(f"MQTT broker mqtt{'s' if settings.tls else ''}://{HOST}:{broker.tls_port} did")
    assert reason in message, (case, message)
    assert PASSWORD not in message and "not-it" not in message
    assert time.monotonic() - started < 15


def test_buffer_mode_keeps_events_while_the_login_fails_and_logs_no_secret(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    settings = broker.settings(broker.tls_port, password="wrong-" + PASSWORD, on_unreachable="buffer")

    async def scenario() -> MqttEventPublisher:
        publisher = create_publisher(settings, backoff_initial_s=0.05, timeout_s=2)
        assert isinstance(publisher, MqttEventPublisher)
        publisher.start()
        for n in range(3):
            publisher.publish(call_topic("c", "tick"), {"n": n})
        await asyncio.sleep(0.5)
        assert not publisher.stats.connected and publisher.stats.pending == 3
        await publisher.aclose(drain_timeout_s=0.5)
        return publisher

    with caplog.at_level(logging.DEBUG):
        asyncio.run(scenario())
    assert "mqtt_unavailable" in caplog.text
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ca_file": "/nonexistent/ca.pem"}, "mqtt.ca_file /nonexistent/ca.pem: cannot load CA certificates"),
        ({"cert_file": "/nonexistent/c.pem"}, "mqtt.cert_file /nonexistent/c.pem / key_file (in cert_file)"),
        ({"key_file": "/x.key"}, "mqtt.key_file is set but mqtt.cert_file is empty"),
        ({"password": "", "password_file": "/no/pw"}, "mqtt.password_file /no/pw: cannot read"),
        ({"username": ""}, "mqtt: a password is set but mqtt.username is empty"),
        ({"tls": False}, "mqtt.ca_file is set but mqtt.tls is false: events would go unencrypted"),
    ],
)
def test_unusable_tls_or_credential_settings_are_clear_errors(
    broker: Broker, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(EventPublishError) as info:
        create_publisher(broker.settings(broker.tls_port, on_unreachable="buffer", **changes))
    assert str(info.value).startswith(message)
