"""Starting real-time intake: HTTP and MQTT as ``settings.intake`` enables them.

Everything is checked before anything starts (tokens, certificates, MQTT files, the broker
under ``mqtt.on_unreachable: fail``), so a configuration mistake stops the command at once
with one line instead of leaving a dialer running with half its intake. The parts live in
:mod:`dialer.intake_app` (routes), :mod:`dialer.intake_auth` (tokens),
:mod:`dialer.intake_server` (uvicorn) and :mod:`dialer.intake_mqtt`; see docs/intake.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from config.settings import Settings
from dialer.intake_answers import OnAdded
from dialer.intake_app import create_app
from dialer.intake_auth import IntakeConfigError, load_tokens
from dialer.intake_mqtt import MqttIntake
from dialer.intake_server import IntakeHttpServer
from dialer.models import utcnow

__all__ = ["IntakeConfigError", "IntakeServices", "load_tokens", "start_intake"]


@dataclass
class IntakeServices:
    """What :func:`start_intake` started; :meth:`aclose` stops it (HTTP first, then MQTT)."""

    http: IntakeHttpServer | None = None
    mqtt: MqttIntake | None = None

    async def aclose(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        if self.mqtt is not None:
            await self.mqtt.aclose()


async def start_intake(
    settings: Settings,
    engine: Engine,
    *,
    on_added: OnAdded | None = None,
    reuse_port: bool = False,
    clock: Callable[[], datetime] = utcnow,
) -> IntakeServices:
    """Start what ``settings.intake`` enables (HTTP on ``http_port``, MQTT with ``mqtt``).

    Raises :class:`IntakeConfigError` or :class:`ivr.event_publisher.EventPublishError`.
    ``on_added`` runs in this event loop after each stored contact. ``reuse_port`` lets
    several processes share the port (``serve --workers N --dial``).
    """
    intake = settings.intake
    services = IntakeServices()
    app = None
    if intake.http_port:
        if intake.tls_key_file and not intake.tls_cert_file:
            raise IntakeConfigError("intake.tls_key_file is set but intake.tls_cert_file is empty")
        tokens = load_tokens(intake)
        if not tokens:
            raise IntakeConfigError(
                "intake.http_port is set but no token is:"
                " set IVR_INTAKE__TOKEN or intake.token_file (mode 0600)"
            )
        app = create_app(
            engine,
            tokens,
            max_body_bytes=intake.max_body_bytes,
            requests_per_s=intake.requests_per_s,
            burst=intake.burst,
            on_added=on_added,
            clock=clock,
        )
    if intake.mqtt:
        services.mqtt = MqttIntake(settings.mqtt, intake, engine, on_added=on_added, clock=clock)
        await services.mqtt.check()
    if app is not None:
        services.http = IntakeHttpServer(
            app,
            intake.bind_address,
            intake.http_port,
            certfile=intake.tls_cert_file,
            keyfile=intake.tls_key_file,
            reuse_port=reuse_port,
        )
        await services.http.start()
    if services.mqtt is not None:
        services.mqtt.start()
    return services
