"""The supervisor's mode machine and who may supervise: pure, replayed by hand."""

from __future__ import annotations

import re

import pytest

from supervision.supervisor_access import RosterError, authorize, normalise_uri, parse_roster
from supervision.supervisor_modes import ROUTES, ModeChange, SupervisorModes, check_mode


def test_the_requested_mode_starts_when_the_phone_answers() -> None:
    modes = SupervisorModes("listen")
    assert modes.mode is None and modes.routes == ROUTES[None]
    assert modes.key("5", 1.0) is None, "keys before the answer change nothing"
    assert modes.answered(2.0) == ModeChange("started", "listen", None, 2.0)
    assert modes.answered(2.5) is None


def test_keys_switch_modes_like_chanspy() -> None:
    modes = SupervisorModes("listen")
    modes.answered(0.0)
    assert modes.key("5", 1.0) == ModeChange("mode_changed", "barge", "listen", 1.0, "key 5")
    assert modes.routes.caller_hears_supervisor and not modes.routes.bot_active
    assert modes.key("5", 1.5) is None, "the same mode again is no change"
    assert modes.key("9", 1.6) is None and modes.key("*", 1.7) is None
    assert modes.key("4", 2.0) == ModeChange("mode_changed", "listen", "barge", 2.0, "key 4")
    assert not modes.routes.caller_hears_supervisor and modes.routes.bot_active
    assert modes.key("6", 3.0) == ModeChange("mode_changed", "takeover", "listen", 3.0, "key 6")
    ignored = modes.key("4", 4.0)
    assert ignored is not None and ignored.kind == "key_ignored" and modes.mode == "takeover"
    assert [c.kind for c in modes.history] == [
        "started",
        "mode_changed",
        "mode_changed",
        "mode_changed",
        "key_ignored",
    ]


def test_leaving_ends_once_and_restores_the_bot() -> None:
    modes = SupervisorModes("barge")
    modes.answered(0.0)
    assert modes.leave(5.0, "supervisor hung up") == ModeChange(
        "ended", None, "barge", 5.0, "supervisor hung up"
    )
    assert modes.leave(6.0, "again") is None
    assert modes.key("6", 7.0) is None
    assert modes.routes.bot_active


def test_check_mode_names_the_choices() -> None:
    assert check_mode("barge") == "barge"
    with pytest.raises(ValueError, match="listen, barge, takeover"):
        check_mode("whisper")


ROSTER = {
    "users": {
        "alice": {"roles": ["supervisor"], "sip_uris": ["sip:alice@PBX.example;transport=udp"]},
        "bob": {"roles": ["auditor"], "sip_uris": ["sip:bob@pbx.example"]},
    }
}


def test_only_a_supervisor_from_her_own_phone_is_allowed() -> None:
    roster = parse_roster(ROSTER, "supervisors.yaml")
    assert authorize(roster, "alice", '"Alice" <sip:alice@pbx.example>').allowed
    refused = authorize(roster, "alice", "sip:+15551234@pbx.example")
    assert not refused.allowed and "not a phone registered to user 'alice'" in refused.reason
    bob = authorize(roster, "bob", "sip:bob@pbx.example")
    assert not bob.allowed and "supervisor role" in bob.reason
    assert "not in the supervisor roster" in authorize(roster, "mallory", "sip:m@x").reason
    assert "not a SIP URI" in authorize(roster, "alice", "tel:+1555").reason


def test_the_console_users_store_overrides_the_roster_roles() -> None:
    roster = parse_roster(ROSTER, "supervisors.yaml")
    assert authorize(roster, "bob", "sip:bob@pbx.example", console_role=True).allowed
    disabled = authorize(roster, "alice", "sip:alice@pbx.example", console_role=False)
    assert not disabled.allowed and "lacks the supervise permission" in disabled.reason
    stranger = authorize(roster, "bob", "sip:+15550000@pbx.example", console_role=True)
    assert not stranger.allowed, "the console grants the role, never a phone"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "expected a mapping with a 'users' mapping"),
        ({"users": {"a b": {}}}, "users.a b: a user name"),
        ({"users": {"al": {"roles": "supervisor"}}}, "users.al.roles: expected a list of strings"),
        ({"users": {"al": {"pin": "1"}}}, "users.al: unknown key(s) pin"),
        ({"users": {"al": {"sip_uris": ["alice"]}}}, "users.al.sip_uris[0]: 'alice' is not a SIP URI"),
    ],
)
def test_a_bad_roster_says_what_and_where(raw: object, message: str) -> None:
    with pytest.raises(RosterError, match="^" + re.escape(f"supervisors.yaml: {message}")):
        parse_roster(raw, "supervisors.yaml")


def test_uris_compare_without_display_name_params_or_host_case() -> None:
    assert normalise_uri("<SIP:Alice@Host.Example:5070;user=phone>") == "sip:Alice@host.example:5070"
