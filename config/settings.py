"""Settings: embedded defaults, overridden by a YAML file, then ``IVR_*`` variables, then CLI flags.

Every value is validated when loaded; an error names the file, line and key so a typo is
found before the hotline starts, not when the first call arrives. Text settings from the
environment are taken literally (a password may hold ``#`` or ``: ``); other types are read
as YAML. Secrets (``mqtt.password``) come only from the environment or a file, and no error
message or ``repr`` shows them.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.errors import ConfigError
from config.service_settings import (
    AlertSettings,
    BalancerSettings,
    ConsoleSettings,
    IntakeSettings,
    SupervisionSettings,
)
from config.setting_rules import (
    CHOICES,
    ENV_ONLY,
    LIST_CHOICES,
    MAY_BE_EMPTY,
    NETWORK_LISTS,
    RANGES,
    SECRETS,
)
from config.settings_sources import EnvText, env_yaml, get_nested, read_yaml, set_nested, short_repr

__all__ = [  # the service sections live in config.service_settings and are settings too
    "AlertSettings",
    "BalancerSettings",
    "ConsoleSettings",
    "DatabaseSettings",
    "DialerSettings",
    "DirectorySettings",
    "FlowSettings",
    "IntakeSettings",
    "MediaSettings",
    "MqttSettings",
    "RecordingSettings",
    "Settings",
    "SipSettings",
    "SupervisionSettings",
    "TransferSettings",
    "load_settings",
    "resolve_project_path",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "IVR_"


@dataclass(frozen=True)
class SipSettings:
    bind_address: str = "0.0.0.0"
    public_address: str = ""
    port: int = 5060
    transports: tuple[str, ...] = ("udp", "tcp")
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    max_concurrent_calls: int = 30
    engine_call_limit: int = 16
    rtp_port_start: int = 40000
    rtp_port_range: int = 10000
    user_agent: str = "ivr-engine"
    max_call_duration_s: float = 3600.0
    answer_delay_s: float = 0.0
    allowed_networks: tuple[str, ...] = ()
    media_networks: tuple[str, ...] = ()
    max_pending_invites: int = 16
    invites_per_source_per_s: float = 200.0
    invite_burst_per_source: int = 400
    retry_after_s: int = 5
    drain_timeout_s: float = 3600.0
    # CPython's GIL switch interval while the SIP agent runs (ms): how long a thread holding the
    # GIL may keep it while another waits. 0.5 was measured with the Python media port, whose
    # clock-thread callbacks need the GIL every 20 ms per call; with the native port 0.5 and 5
    # measured alike (docs/benchmarks.md, capacity).
    gil_switch_interval_ms: float = 0.5


@dataclass(frozen=True)
class FlowSettings:
    path: str = "flows/library/hotline.yaml"
    hot_reload: bool = True


@dataclass(frozen=True)
class MediaSettings:
    asr_engine: str = "pocketsphinx"
    vosk_model_dir: str = ""
    vad_aggressiveness: int = 2
    speech_start_ms: int = 100
    end_silence_ms: int = 300
    max_utterance_s: float = 15.0
    no_input_timeout_s: float = 6.0
    tts_voice: str = "en-us"
    tts_rate: int = 165
    pre_roll_ms: int = 300
    in_band_dtmf: bool = True
    barge_in_min_speech_ms: int = 60
    barge_in_echo_margin_db: float = 6.0
    speech_workers: int = -1
    speech_service_dir: str = ""
    # Grammar steps: after end_silence_ms a complete phrase ends the turn; anything else (a
    # caller pausing inside "ten ... in the morning") waits for this much silence.
    end_silence_incomplete_ms: int = 1000
    # Grammar steps: the first, shorter pause at which a complete, unambiguous phrase may
    # already end the turn (equal to end_silence_ms: one check, at end_silence_ms).
    end_silence_complete_ms: int = 300
    # Grammar steps on pocketsphinx: this far into the caller's silence the recognizer decodes
    # the utterance ahead (the rest of the silence is held back from it), so the check and the
    # final at the end of the turn only read the result (docs/asr.md). At or above the first
    # check: no decode ahead.
    end_silence_prepare_ms: int = 100
    # Each call's audio ring in C++ (the vendored pjsua2's RingMediaPort): no Python on the
    # media clock thread. Off, or with the PyPI wheel: the Python BridgePort.
    native_bridge: bool = True


@dataclass(frozen=True)
class DirectorySettings:
    path: str = ""
    region: str = "US"


@dataclass(frozen=True)
class RecordingSettings:
    dir: str = "recordings"
    signing_key_file: str = "keys/recordings-ed25519.pem"
    number_key_file: str = "keys/recordings-numbers.key"
    # Days a call is kept, by campaign or flow name ("default" for the rest; 0 = keep forever).
    retention_days: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""
    statement_timeout_s: float = 120.0
    lock_timeout_s: float = 30.0


@dataclass(frozen=True)
class MqttSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "ivr"
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    password_file: str = ""
    on_unreachable: str = "buffer"


@dataclass(frozen=True)
class DialerSettings:
    trunk_uri: str = "sip:{number}@127.0.0.1:5080"
    trunk_username: str = ""
    trunk_password: str = field(default="", repr=False)
    ring_timeout_s: float = 30.0
    max_concurrent_calls: int = 10
    calls_per_second: float = 2.0
    lease_s: float = 300.0
    sip_port: int = 0
    machine_message: str = (
        "Hello, this is an automated call about your recent request. We will try you again later. Goodbye."
    )
    amd: dict[str, int | bool] = field(default_factory=dict)
    """Answering-machine detection timings (``media.amd.AmdConfig`` names them; checked at start)."""
    trunk_lines: int = 0
    expected_call_s: float = 180.0


@dataclass(frozen=True)
class TransferSettings:
    queues: dict[str, str] = field(default_factory=dict)
    ring_timeout_s: float = 30.0
    allow_sip_uris: bool = True


@dataclass(frozen=True)
class Settings:
    data_dir: str = "data"
    log_level: str = "info"
    sip: SipSettings = field(default_factory=SipSettings)
    flow: FlowSettings = field(default_factory=FlowSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    recordings: RecordingSettings = field(default_factory=RecordingSettings)
    directory: DirectorySettings = field(default_factory=DirectorySettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    dialer: DialerSettings = field(default_factory=DialerSettings)
    transfer: TransferSettings = field(default_factory=TransferSettings)
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    balancer: BalancerSettings = field(default_factory=BalancerSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    supervision: SupervisionSettings = field(default_factory=SupervisionSettings)

    # Derived locations: one place decides where things live under the data dir.
    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def recordings_path(self) -> Path:
        return self.data_path / self.recordings.dir

    @property
    def recordings_signing_key_path(self) -> Path:
        return self.data_path / Path(self.recordings.signing_key_file).expanduser()

    @property
    def tts_cache_path(self) -> Path:
        return self.data_path / "tts-cache"

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_path / 'ivr.sqlite3'}"

    @property
    def flow_path(self) -> Path:
        return resolve_project_path(self.flow.path)

    @property
    def alert_rules_path(self) -> Path | None:
        """The alert rules file; None when ``alerts.rules_file`` is empty (no alerts)."""
        return resolve_project_path(self.alerts.rules_file) if self.alerts.rules_file else None


def resolve_project_path(path: str) -> Path:
    """A relative path is taken from the working directory, else from the project root."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p.resolve()
    return (PROJECT_ROOT / p).resolve()


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from defaults, ``config_file``, ``env`` and dotted-key ``overrides``.

    ``config_file`` falls back to ``$IVR_CONFIG``; with neither, the embedded defaults apply.
    """
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    source = "<defaults>"
    path = config_file or env.get(f"{ENV_PREFIX}CONFIG")
    if path:
        source = str(path)
        raw, lines = read_yaml(Path(path))
        origins = {key: f"{source}:{line}" for key, line in lines.items()}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == f"{ENV_PREFIX}CONFIG":
            continue
        keys = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        set_nested(raw, keys, EnvText(value))
        origins[keys] = f"environment variable {name}"
    for dotted, value in (overrides or {}).items():
        if value is not None:
            keys = tuple(dotted.split("."))
            set_nested(raw, keys, value)
            origins[keys] = "command line"
    for key, advice in ENV_ONLY.items():
        where = origins.get(key, source)
        if get_nested(raw, key) not in (None, "") and not where.startswith("environment variable"):
            raise ConfigError(f"{where}: {'.'.join(key)}: a secret is not kept in a config file; {advice}")
    settings: Settings = _build(Settings, raw, (), source, origins)
    return settings


def _build(
    cls: type[Any], raw: Any, prefix: tuple[str, ...], source: str, origins: dict[tuple[str, ...], str]
) -> Any:
    def where(key: tuple[str, ...]) -> str:
        return origins.get(key, source)

    raw = env_yaml(raw, where(prefix))
    if not isinstance(raw, dict):
        raise ConfigError(f"{where(prefix)}: {'.'.join(prefix)}: expected a mapping, got {short_repr(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            dotted = ".".join((*prefix, str(key)))
            hint = _did_you_mean(str(key), list(fields))
            raise ConfigError(f"{where((*prefix, str(key)))}: unknown setting '{dotted}'{hint}")
    values: dict[str, Any] = {}
    for name in fields:
        if name not in raw:
            continue
        key = (*prefix, name)
        hint_type = hints[name]
        if dataclasses.is_dataclass(hint_type):
            values[name] = _build(typing.cast(type[Any], hint_type), raw[name], key, source, origins)
        else:
            values[name] = _coerce(raw[name], hint_type, key, where(key))
    return cls(**values)


def _coerce(value: Any, hint: Any, key: tuple[str, ...], where: str) -> Any:
    dotted = ".".join(key)
    shown = "a value that is not shown (a secret)" if key in SECRETS else short_repr(value)
    value = str(value) if hint is str and isinstance(value, EnvText) else env_yaml(value, where)

    def fail(expected: str) -> ConfigError:
        return ConfigError(f"{where}: {dotted}: expected {expected}, got {shown}")

    origin = typing.get_origin(hint)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise fail("a mapping of names to values")
        if typing.get_args(hint)[1:] == (int,):
            return {str(name): _coerce(item, int, (*key, str(name)), where) for name, item in value.items()}
        if typing.get_args(hint)[1:] == (int | bool,):  # checked by its consumer, e.g. AmdConfig
            return {
                str(name): _coerce(item, bool if isinstance(item, bool) else int, (*key, str(name)), where)
                for name, item in value.items()
            }
        out: dict[str, str] = {}
        for name, item in value.items():
            if not isinstance(item, str) or not item.strip():
                raise ConfigError(
                    f"{where}: {dotted}.{name}: expected a non-empty string, got {short_repr(item)}"
                )
            out[str(name)] = item.strip()
        return out
    if origin is tuple:
        items = [part for part in value.split(",") if part.strip()] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise fail("a list")
        result = tuple(str(item).strip() for item in items)
        allowed = LIST_CHOICES.get(key)
        for item in result:
            if allowed and item not in allowed:
                raise ConfigError(f"{where}: {dotted}: {short_repr(item)} is not one of {', '.join(allowed)}")
        if not result and key not in MAY_BE_EMPTY:
            raise fail("a non-empty list")
        if key in NETWORK_LISTS:
            for item in result:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ConfigError(
                        f"{where}: {dotted}: {short_repr(item)} is not a network"
                        " (CIDR like 10.0.0.0/8, or an address)"
                    ) from None
        return result
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0", "on", "off"}:
            return value.lower() in {"true", "yes", "1", "on"}
        raise fail("true or false")
    if hint is int or hint is float:
        if isinstance(value, bool):
            raise fail("a number")
        try:
            number = hint(value)
        except (TypeError, ValueError, OverflowError):
            raise fail("an integer" if hint is int else "a number") from None
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise fail("an integer")
        if not math.isfinite(number):
            raise fail("a finite number")
        low, high = RANGES.get(key, (0, float("inf")))
        if not low <= number <= high:
            raise ConfigError(f"{where}: {dotted}: {short_repr(number)} is outside {low:g}..{high:g}")
        return number
    if hint is str:
        if value is None:
            return ""
        if not isinstance(value, str | int | float):
            raise fail("a string")
        text = str(value)
        control = next((ch for ch in text if ch < " " and ch != "\t"), None)
        if control is not None:
            raise ConfigError(f"{where}: {dotted}: contains the control character U+{ord(control):04X}")
        allowed = CHOICES.get(key)
        if allowed and text not in allowed:
            raise ConfigError(f"{where}: {dotted}: {short_repr(text)} is not one of {', '.join(allowed)}")
        return text
    raise TypeError(f"setting {dotted} has an unsupported type {hint!r}")


def _did_you_mean(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
