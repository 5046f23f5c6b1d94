"""The documented event schemas: valid schemas, every topic documented, bad messages refused."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from config.settings import PROJECT_ROOT
from supervision.event_catalog import SCHEMA_DIR, TOPICS, load_schema, schema_name

TS = "2026-03-02T10:00:01.250Z"


def validate(name: str, message: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(
        load_schema(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(message)


def test_every_schema_file_is_a_valid_schema_and_every_topic_has_one() -> None:
    files = {path.stem for path in SCHEMA_DIR.glob("*.json")}
    assert files == {name for _, name in TOPICS}
    for name in files:
        jsonschema.Draft202012Validator.check_schema(load_schema(name))


def test_every_topic_and_schema_is_in_docs_events_md() -> None:
    doc = (PROJECT_ROOT / "docs" / "events.md").read_text()
    for pattern, name in TOPICS:
        placeholder = "<id>" if pattern.startswith("call/") else "<campaign>"
        assert f"`ivr/{pattern.replace('+', placeholder)}`" in doc, pattern
        assert f"event_schemas/{name}.json" in doc, name


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("ivr/call/20260302T100000-abc/transcript", "call_transcript"),
        ("ivr/call/x/alert", "call_alert"),
        ("ivr/dialer/renewals/outcome", "dialer_attempt"),
        ("ivr/dialer/intake/renewals/result", "intake_result"),
        ("ivr/call/x/unknown", None),
        ("ivr/call/x/alert/extra", None),
    ],
)
def test_topics_map_to_their_schema(topic: str, expected: str | None) -> None:
    assert schema_name(topic, "ivr") == expected


GOOD_ALERT = {
    "rule": "legal_threat",
    "kind": "phrase",
    "severity": "high",
    "at_s": 12.48,
    "evidence": "said 'lawyer'",
    "ts": TS,
}
GOOD_LINE = {
    "speaker": "caller",
    "kind": "final",
    "text": "[redacted: 4 digits]",
    "start_s": 3.2,
    "end_s": 5.0,
    "confidence": None,
    "interrupted": False,
    "at": TS,
    "ts": TS,
}


@pytest.mark.parametrize(
    ("name", "message", "broken"),
    [
        ("call_alert", GOOD_ALERT, {"severity": "urgent"}),
        ("call_alert", GOOD_ALERT, {"action": {"goto": "agent", "offer_agent": True}}),
        ("call_alert", GOOD_ALERT, {"at_s": -1}),
        ("call_transcript", GOOD_LINE, {"speaker": "robot"}),
        ("call_transcript", GOOD_LINE, {"confidence": 1.5}),
        ("call_transcript", GOOD_LINE, {"at": "yesterday"}),
        ("call_transcript", GOOD_LINE, {"caller_number": "+4915112345678"}),
    ],
)
def test_a_bad_message_fails_validation(name: str, message: dict[str, Any], broken: dict[str, Any]) -> None:
    validate(name, message)
    with pytest.raises(jsonschema.ValidationError):
        validate(name, {**message, **broken})


def test_a_message_without_its_required_fields_fails() -> None:
    for key in ("rule", "severity", "ts"):
        with pytest.raises(jsonschema.ValidationError, match=f"'{key}' is a required property"):
            validate("call_alert", {k: v for k, v in GOOD_ALERT.items() if k != key})
