"""The feature-code dial-in decisions, replayed: dial string, who the phone claims, the PIN."""

from __future__ import annotations

import random

import jsonschema
import pytest

from supervision.event_catalog import load_schema
from supervision.feature_code import (
    Claim,
    FeatureCodeError,
    Join,
    PinEntry,
    Refuse,
    Retry,
    Verify,
    allocate_short_id,
    check_prefix,
    claimed_user,
    dialled,
    join_target,
)
from supervision.supervisor_access import RosterError, parse_roster

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
ROSTER = parse_roster(
    {
        "users": {
            "alice": {"roles": ["supervisor"], "sip_uris": ["sip:alice@pbx"], "pin_hash": HASH},
            "bob": {"roles": ["supervisor"], "sip_uris": ["sip:bob@pbx"]},
            "carol": {"sip_uris": ["sip:shared@pbx"], "pin_hash": HASH},
            "dave": {"sip_uris": ["sip:shared@pbx"], "pin_hash": HASH},
        }
    },
    "supervisors.yaml",
)

V6 = parse_roster({"users": {"erin": {"sip_uris": ["sip:erin@[::1]:5070"], "pin_hash": HASH}}}, "r.yaml")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sip:*7712345@10.0.0.1", "12345"),
        ('"IVR" <sip:%2A7748213@ivr.example;transport=udp>', "48213"),
        ("sip:*77@ivr", ""),
        ("sip:*77abc@ivr", "abc"),
        ("sip:hotline@ivr", None),
        ("sip:7712345@ivr", None),
        ("not a uri", None),
    ],
)
def test_dialled_short_id(uri: str, expected: str | None) -> None:
    assert dialled(uri, "*77") == expected


def test_prefix_is_checked() -> None:
    assert check_prefix("*77") == "*77"
    with pytest.raises(FeatureCodeError, match=r"supervision.feature_code: 'x1' must be 1-6"):
        check_prefix("x1")


def test_short_ids_are_five_digits_and_skip_ids_in_use() -> None:
    draws = iter([48213, 48213, 10000])
    assert allocate_short_id({"48213"}, lambda low, high: next(draws)) == "10000"
    rng = random.Random(7)
    used: set[str] = set()
    for _ in range(500):
        used.add(allocate_short_id(used, rng.randint))
    assert len(used) == 500 and all(len(s) == 5 and s[0] != "0" for s in used)


def test_the_calling_phone_names_whose_pin_to_ask_for() -> None:
    assert claimed_user(ROSTER, '"Alice" <sip:alice@PBX;transport=udp>') == Claim(
        "alice", HASH, "sip:alice@pbx"
    )
    assert claimed_user(ROSTER, "sip:alice@pbx:5062") == Claim(
        "alice", HASH, "sip:alice@pbx"
    )  # ports say nothing
    assert claimed_user(V6, "sip:erin@[::1]") == Claim("erin", HASH, "sip:erin@[::1]:5070")
    assert "not registered" in str(claimed_user(V6, "sip:erin@[::2]:5060"))
    assert "not registered" in str(claimed_user(ROSTER, "sip:mallory@pbx"))
    assert "no PIN" in str(claimed_user(ROSTER, "sip:bob@pbx"))
    assert "registered to 2 users" in str(claimed_user(ROSTER, "sip:shared@pbx"))
    assert "not a SIP URI" in str(claimed_user(ROSTER, "alice"))


def test_a_pin_hash_in_clear_is_refused_in_the_roster() -> None:
    with pytest.raises(RosterError, match=r"users.alice.pin_hash: expected an argon2 hash"):
        parse_roster({"users": {"alice": {"pin_hash": "1234"}}}, "supervisors.yaml")


def _keys(entry: PinEntry, keys: str, now: float) -> list[object]:
    return [c for c in (entry.digit(k, now) for k in keys) if c is not None]


def test_right_pin_joins() -> None:
    entry = PinEntry("48213", 0.0)
    assert _keys(entry, "1234#", 1.0) == [Verify("1234")]
    assert entry.digit("9", 1.1) is None  # keys while the PIN is checked are dropped
    assert entry.verified(True, 1.2) == Join("48213")
    assert entry.state == "joined"


def test_three_wrong_pins_refuse() -> None:
    entry = PinEntry("48213", 0.0, tries=3)
    assert _keys(entry, "1111#", 1.0) == [Verify("1111")]
    assert entry.verified(False, 1.1) == Retry(2)
    assert _keys(entry, "12#", 2.0) == [Retry(1)]  # too short: a try, no hash check
    assert _keys(entry, "2222#", 3.0) == [Verify("2222")]
    assert entry.verified(False, 3.1) == Refuse("wrong PIN, no tries left")
    assert entry.digit("1", 3.2) is None and entry.tick(99.0) is None


def test_a_pause_submits_and_silence_refuses() -> None:
    entry = PinEntry("48213", 0.0, timeout_s=10.0)
    assert _keys(entry, "4321", 1.0) == []
    assert entry.tick(10.9) is None
    assert entry.tick(11.0) == Verify("4321")
    silent = PinEntry("48213", 0.0, timeout_s=10.0)
    assert silent.tick(9.9) is None
    assert silent.tick(10.0) == Refuse("no PIN keyed")


def test_too_long_a_pin_is_a_wrong_try() -> None:
    entry = PinEntry("48213", 0.0)
    assert _keys(entry, "1" * 13, 1.0) == [Retry(2)]


def test_a_malformed_short_id_is_refused_only_after_the_pin() -> None:
    entry = PinEntry("12ab", 0.0)
    assert _keys(entry, "1234#", 1.0) == [Verify("1234")]
    assert entry.verified(True, 1.1) == Refuse("dialled short id '12ab' is not 4-6 digits")


def test_result_without_a_check_pending_is_a_bug() -> None:
    with pytest.raises(RuntimeError, match="while collecting"):
        PinEntry("48213", 0.0).verified(True, 1.0)


def test_join_target() -> None:
    assert join_target("48213", {"48213": "call-1"}) == "call-1"
    assert join_target("11111", {"48213": "call-1"}) == Refuse("no live call with short id 11111")


def test_the_connected_event_schema_carries_the_short_id() -> None:
    schema = load_schema("call_connected")
    event = {
        "direction": "inbound",
        "remote": "sip:*****@pbx",
        "flow": "hotline",
        "ts": "2026-03-02T10:00:00Z",
    }
    jsonschema.validate({**event, "short_id": "48213"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**event, "short_id": "04821"}, schema)
