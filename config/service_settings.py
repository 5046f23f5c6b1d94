"""Settings sections of the services around calls: contact intake, the web console, live
supervision alerts, joining calls from a phone, and the Kamailio front.

They are part of :class:`config.settings.Settings` (and re-exported there); each is loaded and
validated with the rest, with its choices and ranges in :mod:`config.setting_rules`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IntakeSettings:
    """Real-time intake of contacts into running campaigns (``dialer/intake_http.py``, ``_mqtt``)."""

    http_port: int = 0
    bind_address: str = "127.0.0.1"
    token: str = field(default="", repr=False)
    token_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    max_body_bytes: int = 16384
    requests_per_s: float = 20.0
    burst: int = 100
    mqtt: bool = False
    mqtt_share_group: str = ""


@dataclass(frozen=True)
class ConsoleSettings:
    """The web console (``run_ivr.py console``; inside ``serve`` when ``enabled``)."""

    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = 8080
    secret_key: str = field(default="", repr=False)
    session_hours: float = 12.0


@dataclass(frozen=True)
class AlertSettings:
    """Live supervision alerts (``supervision/``): the rules file, hot-reloaded, and the emotion signal."""

    rules_file: str = "config/alerts.yaml"
    emotion: bool = True
    baseline_utterances: int = 1


@dataclass(frozen=True)
class SupervisionSettings:
    """Joining a call from a phone (docs/supervision.md): the dial prefix before a call's short
    id, and the PIN dialogue that follows."""

    feature_code: str = "*77"
    pin_tries: int = 3
    pin_timeout_s: float = 10.0


@dataclass(frozen=True)
class BalancerSettings:
    """The Kamailio front of several engine nodes (``run_ivr.py balancer``, ``serve --workers N``)."""

    front: str = "auto"
    bind_address: str = "0.0.0.0"
    port: int = 5060
    public_address: str = ""
    nodes: tuple[str, ...] = ()
    algorithm: str = "call_load"
    probe_interval_s: int = 5
    failover_timeout_s: float = 2.0
