"""The ``qa`` call event: sealed recordings judged the way a live call's end judges them
(:func:`recordings.qa_batch.check_and_store`), the verdicts published through
:class:`~ivr.call_reports.CallReports` and the real MQTT publisher to the real Mosquitto at
127.0.0.1:1883 (skipped if absent, unless CI=true), then checked against docs/events.md's schema
and against the ``.qa.json`` each call got."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import jsonschema
import pytest

from config.settings import MqttSettings
from ivr.call_reports import CallReports
from ivr.event_publisher import MqttEventPublisher, create_publisher
from ivr.sip_events import CallOffered
from recordings.qa_batch import CallQa, check_and_store
from recordings.qa_file import read_qa_file
from recordings.qa_rules_loader import load_catalog
from supervision.event_catalog import load_schema, schema_name
from tests.component.recordings.conftest import T0, record
from tests.mqtt_broker import BROKER, require_broker

HOST, PORT = BROKER
pytestmark = pytest.mark.component
RULES = """qa: {name: words, version: "2", applies_to: {flows: [hotline]}, pass_score: 60}
rules:
  - {id: greets, kind: required_prompt, text: Welcome, barge_in: allowed}
  - {id: no_cancel, kind: forbidden_phrases, speaker: caller, critical: true, phrases: [cancel]}
  - id: answers
    kind: acknowledgement
    after: how can I help
    phrases: [balance, cancel]
    within_turns: 1
    weight: 3
"""
CALLS = {
    "c-fail": "I want to cancel my card",  # a critical rule fails
    "c-pass": "my balance please",
    "c-redacted": "[redacted speech]",  # the answer cannot be judged: the score may miss pass_score
}


@pytest.fixture(scope="module", autouse=True)
def _broker_reachable() -> None:
    require_broker()


def judged_calls(tmp_path: Path) -> dict[str, CallQa | None]:
    """Each call of CALLS sealed and judged, plus one of a flow no rules file claims."""
    rules_dir = tmp_path / "qa"
    rules_dir.mkdir()
    (rules_dir / "words.yaml").write_text(RULES)
    catalog = load_catalog([rules_dir])
    data = tmp_path / "data"
    checked: dict[str, CallQa | None] = {}
    for n, (call_id, said) in enumerate([*CALLS.items(), ("c-survey", "fine")]):
        record(
            data, call_id, start=T0 + timedelta(minutes=n), said=said, flow="survey" if n == 3 else "hotline"
        )
        (sidecar,) = (data / "recordings").rglob(f"{call_id}.json")
        checked[call_id] = check_and_store(sidecar, catalog, root=data / "recordings")
    return checked


def test_each_judged_call_publishes_its_verdict_and_it_matches_the_schema_and_the_qa_file(
    tmp_path: Path,
) -> None:
    checked = judged_calls(tmp_path)
    prefix = f"test-{uuid.uuid4().hex[:12]}/ivr"

    async def scenario() -> list[aiomqtt.Message]:
        received: list[aiomqtt.Message] = []
        async with aiomqtt.Client(HOST, PORT, identifier=f"sub-{uuid.uuid4().hex[:8]}") as sub:
            await sub.subscribe(f"{prefix}/#", qos=1)
            publisher = create_publisher(
                MqttSettings(enabled=True, host=HOST, port=PORT, topic_prefix=prefix)
            )
            assert isinstance(publisher, MqttEventPublisher)
            publisher.start()
            for call_id, call in checked.items():
                offered = CallOffered(
                    1, "inbound", f"sip-{call_id}", "sip:+4915112345678@pbx", "sip:x@ivr", 0.0
                )
                CallReports(call_id, offered, publisher).qa(call.result if call is not None else None)
            await publisher.aclose(drain_timeout_s=10)
            assert publisher.stats.published == len(CALLS), "one verdict per judged call, none for c-survey"
            assert publisher.stats.dropped == 0 and publisher.stats.rejected == 0
            async with asyncio.timeout(10):
                async for message in sub.messages:
                    received.append(message)
                    if len(received) == len(CALLS):
                        break
        return received

    verdicts: dict[str, dict[str, Any]] = {}
    for message in asyncio.run(scenario()):
        topic = str(message.topic)
        assert schema_name(topic, prefix) == "call_qa", topic
        assert isinstance(message.payload, bytes)
        body = json.loads(message.payload)
        jsonschema.Draft202012Validator(
            load_schema("call_qa"), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        ).validate(body)
        verdicts[topic.split("/")[-2]] = body
    assert set(verdicts) == set(CALLS)

    assert {call_id: v["status"] for call_id, v in verdicts.items()} == {
        "c-fail": "fail",
        "c-pass": "pass",
        "c-redacted": "incomplete",
    }
    failed = verdicts["c-fail"]["failed"]
    assert [(f["rule"], f["kind"], f["critical"]) for f in failed] == [
        ("no_cancel", "forbidden_phrases", True)
    ]
    assert "cancel" in failed[0]["detail"] and failed[0]["at"] == [{"start_s": 0.5, "end_s": 0.9}]
    assert verdicts["c-redacted"]["not_evaluable"] == ["answers"]
    assert verdicts["c-redacted"]["score"] == 100.0 and verdicts["c-pass"]["failed"] == []
    for call_id, verdict in verdicts.items():
        call = checked[call_id]
        assert call is not None and call.qa_path is not None
        document = read_qa_file(call.qa_path)  # what the event says is what the QA file says
        assert (verdict["status"], verdict["score"], verdict["outcome"]) == (
            document["status"],
            document["score"],
            document["outcome"],
        )
        assert verdict["rules"] == {k: document["rules"][k] for k in ("name", "version", "sha256")}
        assert verdict["rules"]["version"] == "2" and verdict["pass_score"] == 60.0
        assert verdict["flow"] == document["flow"] == {"name": "hotline", "version": "3"}
        assert [f["rule"] for f in verdict["failed"]] == [
            r["rule"] for r in document["results"] if r["status"] == "fail"
        ]
        assert all(
            f["at"] == r["at"]
            for f in verdict["failed"]
            for r in document["results"]
            if r["rule"] == f["rule"]
        )


@pytest.mark.parametrize(
    "broken",
    [
        {"status": "passed"},
        {"score": 101},
        {"failed": [{"rule": "x", "kind": "vibes", "critical": False, "detail": "", "at": []}]},
        {
            "failed": [
                {
                    "rule": "x",
                    "kind": "no_match",
                    "critical": False,
                    "detail": "",
                    "at": [{"start_s": -1, "end_s": 0}],
                }
            ]
        },
        {"rules": {"name": "r", "version": "1"}},
        {"flow": {"name": "f", "version": "1", "caller": "+4915112345678"}},
        {"not_evaluable": ["has space"]},
        {"remote": "+4915112345678"},
    ],
)
def test_the_schema_refuses_what_the_engine_never_sends(broken: dict[str, Any]) -> None:
    good: dict[str, Any] = {
        "status": "fail",
        "score": 40.0,
        "pass_score": 80.0,
        "outcome": "confirmed",
        "flow": {"name": "f", "version": "1"},
        "rules": {"name": "r", "version": "1", "sha256": "0" * 64},
        "failed": [{"rule": "x", "kind": "no_match", "critical": False, "detail": "3 no-matches", "at": []}],
        "not_evaluable": [],
        "ts": "2026-03-02T10:00:01.250Z",
    }
    validator = jsonschema.Draft202012Validator(load_schema("call_qa"))
    validator.validate(good)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**good, **broken})
