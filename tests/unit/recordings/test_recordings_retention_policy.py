"""Which retention applies to a call, and the ``recordings.retention_days`` setting that holds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.settings import load_settings
from recordings import RecordingError
from recordings.retention import RetentionPolicy


def test_campaign_or_flow_entry_beats_default_and_the_longer_wins() -> None:
    policy = RetentionPolicy({"default": 90, "compliance_callback": 2555, "hotline": 30, "survey": 0})
    assert policy.rule_for("callback", "compliance_callback") == (2555, "campaign compliance_callback")
    assert policy.rule_for("hotline", "") == (30, "flow hotline")
    assert policy.rule_for("hotline", "compliance_callback") == (2555, "campaign compliance_callback")
    assert policy.rule_for("other", "other") == (90, "default")
    assert policy.rule_for("survey", "compliance_callback") == (None, "flow survey")  # 0: forever
    assert policy.shortest_days == 30


def test_no_setting_keeps_everything() -> None:
    assert RetentionPolicy({}).rule_for("hotline", "") == (None, "no retention set")
    assert RetentionPolicy({}).shortest_days is None
    assert RetentionPolicy({"hotline": 30}).rule_for("other", "") == (None, "no retention set")


def test_absurd_retention_is_refused() -> None:
    with pytest.raises(RecordingError, match=r"retention_days.hotline: 99999 days is outside 0..36500"):
        RetentionPolicy({"hotline": 99_999})


def test_settings_read_retention_from_yaml_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_text("recordings:\n  retention_days: {default: 90, compliance_callback: 2555}\n")
    settings = load_settings(config, env={"IVR_RECORDINGS__RETENTION_DAYS__HOTLINE": "30"})
    assert settings.recordings.retention_days == {"default": 90, "compliance_callback": 2555, "hotline": 30}
    assert load_settings(env={}).recordings.retention_days == {}
    assert load_settings(env={}).recordings.number_key_file == "keys/recordings-numbers.key"


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        (
            "  retention_days: {default: ninety}",
            "recordings.retention_days.default: expected an integer, got 'ninety'",
        ),
        ("  retention_days: {default: -1}", "recordings.retention_days.default: -1 is outside 0..inf"),
        ("  retention_days: {default: 1.5}", "recordings.retention_days.default: expected an integer"),
        ("  retention_days: 90", "recordings.retention_days: expected a mapping of names to values"),
    ],
)
def test_bad_retention_settings_name_the_key(tmp_path: Path, yaml: str, message: str) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_text(f"recordings:\n{yaml}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={})
    assert message in str(info.value)
