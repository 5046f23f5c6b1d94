"""Broken and hostile settings: one ConfigError naming where, never a traceback or a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError, MediaError
from config.settings import DatabaseSettings, MqttSettings, load_settings
from config.settings_sources import MAX_CONFIG_BYTES
from media.amd import AmdConfig


def test_text_settings_from_the_environment_are_literal() -> None:
    env = {
        "IVR_MQTT__PASSWORD": "s3cret: #1 [x",
        "IVR_SIP__USER_AGENT": "[abc",
        "IVR_DATABASE__URL": "~",
        "IVR_MQTT__USERNAME": "0123",
    }
    s = load_settings(env=env)
    assert s.mqtt.password == "s3cret: #1 [x"
    assert (s.sip.user_agent, s.database.url, s.mqtt.username) == ("[abc", "~", "0123")


def test_other_types_from_the_environment_are_still_yaml() -> None:
    s = load_settings(
        env={
            "IVR_SIP__PORT": "5070",
            "IVR_SIP__TRANSPORTS": "[udp, tcp]",
            "IVR_TRANSFER__QUEUES": "{cards: 'sip:cards@pbx'}",
            "IVR_MQTT__TLS": "true",
            "IVR_DATABASE__LOCK_TIMEOUT_S": "2.5",
        }
    )
    assert s.sip.port == 5070 and s.sip.transports == ("udp", "tcp")
    assert s.transfer.queues == {"cards": "sip:cards@pbx"} and s.mqtt.tls
    assert s.database.lock_timeout_s == 2.5


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("IVR_SIP__PORT", "9" * 5000, "environment variable IVR_SIP__PORT: cannot read '9999"),
        ("IVR_SIP__PORT", "[abc", "environment variable IVR_SIP__PORT: cannot read '[abc' as a value"),
        ("IVR_SIP__PORT", "1e999", "sip.port: expected an integer, got '1e999'"),
        ("IVR_SIP__MAX_CALL_DURATION_S", ".inf", "sip.max_call_duration_s: expected a finite number"),
        ("IVR_SIP__MAX_CALL_DURATION_S", ".nan", "sip.max_call_duration_s: expected a finite number"),
        ("IVR_LOG_LEVEL", "verbose", "log_level: 'verbose' is not one of debug, info, warning, error"),
        ("IVR_MQTT__ON_UNREACHABLE", "retry", "mqtt.on_unreachable: 'retry' is not one of buffer, fail"),
        ("IVR_DATABASE__LOCK_TIMEOUT_S", "0", "database.lock_timeout_s: 0.0 is outside 0.1..3600"),
        ("IVR_DATA_DIR", "data\x1b[2J", "data_dir: contains the control character U+001B"),
        ("IVR_SIP__ALLOWED_NETWORKS", "x" * 5000, "sip.allowed_networks: 'xxxxxxxx"),
    ],
)
def test_bad_environment_values_are_one_short_error(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={name: value})
    assert message in str(info.value)
    assert len(str(info.value)) < 300


def test_a_password_in_a_config_file_is_refused_and_never_shown(tmp_path: Path) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_text("mqtt:\n  username: ivr\n  password: hunter2\n")
    with pytest.raises(ConfigError, match=r"ivr.yaml:3: mqtt.password: a secret is not kept") as info:
        load_settings(config, env={})
    assert "hunter2" not in str(info.value)
    assert load_settings(config, env={"IVR_MQTT__PASSWORD": "from-env"}).mqtt.password == "from-env"


def test_a_secret_of_the_wrong_type_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, overrides={"dialer.trunk_password": ["hunter2"]})
    assert "hunter2" not in str(info.value) and "a secret is not kept" in str(info.value)


def test_repr_hides_the_mqtt_password() -> None:
    settings = MqttSettings(username="ivr", password="hunter2")
    assert "hunter2" not in repr(settings) and "hunter2" not in repr(load_settings(env={}))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"sip:\n  port: " + b"9" * 5000 + b"\n", "a value cannot be read: Exceeds the limit"),
        (b"a: " + b"[" * 20000 + b"]" * 20000 + b"\n", "a value cannot be read"),
        (b"sip:\n  user_agent: caf\xe9\n", "ivr.yaml:2:18: config file is not UTF-8: invalid continuation"),
        (b'sip:\n  user_agent: "a\\0b"\n', "sip.user_agent: contains the control character U+0000"),
        (b"# " + b"x" * (MAX_CONFIG_BYTES + 1), "config file is larger than 1,000,000 bytes"),
    ],
    ids=["huge-number", "deep", "latin1", "nul", "huge-file"],
)
def test_hostile_config_files_are_one_error(tmp_path: Path, content: bytes, message: str) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={})
    assert message in str(info.value) and len(str(info.value)) < 300


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_is_not_read_as_a_config_file() -> None:
    with pytest.raises(ConfigError, match="/dev/zero: cannot read config file: not a regular file"):
        load_settings("/dev/zero", env={})


def test_database_timeouts_have_defaults_and_can_be_turned_off() -> None:
    assert load_settings(env={}).database == DatabaseSettings("", 120.0, 30.0)
    assert load_settings(env={"IVR_DATABASE__STATEMENT_TIMEOUT_S": "0"}).database.statement_timeout_s == 0


def test_a_trunk_password_comes_only_from_the_environment_and_is_never_shown(tmp_path: Path) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_text("dialer:\n  trunk_username: acme\n  trunk_password: hunter2\n")
    with pytest.raises(ConfigError, match=r"ivr.yaml:3: dialer.trunk_password: a secret") as info:
        load_settings(config, env={})
    assert "hunter2" not in str(info.value)
    settings = load_settings(None, env={"IVR_DIALER__TRUNK_PASSWORD": "from-env"})
    assert settings.dialer.trunk_password == "from-env" and "from-env" not in repr(settings)


def test_answering_machine_detection_is_set_in_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_text("dialer:\n  amd: {greeting_ms: 1200, wait_for_beep: true}\n")
    amd = AmdConfig.from_config(load_settings(config, env={}).dialer.amd, "dialer.amd")
    assert (amd.greeting_ms, amd.wait_for_beep) == (1200, True)
    config.write_text("dialer:\n  amd: {greeting_ms: soon}\n")
    with pytest.raises(ConfigError, match=r"ivr.yaml:2: dialer.amd.greeting_ms: expected an integer"):
        load_settings(config, env={})
    with pytest.raises(MediaError, match=r"dialer.amd.greting_ms: unknown AMD setting"):
        AmdConfig.from_config({"greting_ms": 1}, "dialer.amd")
