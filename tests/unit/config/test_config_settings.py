from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[3]


def test_shipped_yaml_documents_exactly_the_defaults() -> None:
    assert load_settings(ROOT / "config" / "ivr.yaml", env={}) == Settings()


def test_env_overrides_file_and_cli_overrides_env(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text("sip:\n  port: 5070\nmedia:\n  end_silence_ms: 250\n")
    s = load_settings(
        cfg,
        env={"IVR_SIP__PORT": "5080", "IVR_DATA_DIR": str(tmp_path)},
        overrides={"sip.port": 5090, "flow.path": None},
    )
    assert s.sip.port == 5090
    assert s.media.end_silence_ms == 250
    assert s.data_path == tmp_path.resolve()
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'ivr.sqlite3'}"
    assert s.recordings_path == tmp_path.resolve() / "recordings"


def test_lists_from_env_are_comma_separated() -> None:
    s = load_settings(env={"IVR_SIP__TRANSPORTS": "udp", "IVR_SIP__CODECS": "PCMA,PCMU"})
    assert s.sip.transports == ("udp",)
    assert s.sip.codecs == ("PCMA", "PCMU")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sip:\n  prot: 5060\n", "bad.yaml:2: unknown setting 'sip.prot' (did you mean 'port'?)"),
        ("sip:\n  port: abc\n", "bad.yaml:2: sip.port: expected an integer, got 'abc'"),
        ("sip:\n  port: 70000\n", "bad.yaml:2: sip.port: 70000 is outside 0..65535"),
        ("sip:\n  codecs: [G729]\n", "bad.yaml:2: sip.codecs: 'G729' is not one of PCMU, PCMA"),
        (
            "media:\n  asr_engine: whisper\n",
            "bad.yaml:2: media.asr_engine: 'whisper' is not one of pocketsphinx, vosk",
        ),
        ("mqtt:\n  enabled: maybe\n", "bad.yaml:2: mqtt.enabled: expected true or false, got 'maybe'"),
        ("sip: 5\n", "bad.yaml:1: sip: expected a mapping, got 5"),
        ("sip:\n  port: [1\n", "invalid YAML"),
        ("- a\n- b\n", "bad.yaml:1: config must be a mapping"),
        ("transfer:\n  queues: [a]\n", "bad.yaml:2: transfer.queues: expected a mapping of names to values"),
        (
            "transfer:\n  queues:\n    cards: 5\n",
            "bad.yaml:2: transfer.queues.cards: expected a non-empty string",
        ),
    ],
)
def test_bad_file_names_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    assert message in str(info.value)


def test_bad_env_names_the_variable() -> None:
    with pytest.raises(
        ConfigError, match=r"environment variable IVR_SIP__MAX_CONCURRENT_CALLS: sip\.max_concurrent_calls"
    ):
        load_settings(env={"IVR_SIP__MAX_CONCURRENT_CALLS": "0"})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.yaml", env={})
