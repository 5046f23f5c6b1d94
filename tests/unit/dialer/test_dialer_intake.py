"""Real-time intake, the pure parts: decoding and shaping requests, tokens, rate limit, topics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.settings import IntakeSettings, MqttSettings, load_settings
from dialer.importer import STANDARD_COLUMNS, CampaignSpec, ContactRow, RowParser
from dialer.intake_answers import IntakeAnswer, IntakeStatus, Problem, label
from dialer.intake_app import _is_json
from dialer.intake_auth import authorized
from dialer.intake_http import IntakeConfigError, load_tokens
from dialer.intake_mqtt import intake_topics
from dialer.intake_rate import RateLimiter
from dialer.intake_request import MAX_FIELDS, MAX_TEXT, IntakeRequest, decode_request
from dialer.models import CampaignKind
from ivr.event_publisher import EventPublishError

TOKEN = "s3cr3t-token-0123456789"


def request(**values: object) -> bytes:
    base: dict[str, object] = {"phone": "+8613812345678", "cooling_off_end": "2025-03-01T10:00:00+08:00"}
    base.update(values)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def ok(body: bytes) -> IntakeRequest:
    decoded = decode_request(body)
    assert isinstance(decoded, IntakeRequest), decoded
    return decoded


def refused(body: bytes) -> IntakeAnswer:
    decoded = decode_request(body)
    assert isinstance(decoded, IntakeAnswer), decoded
    return decoded


def problems(body: bytes) -> list[tuple[str, str]]:
    decoded = refused(body)
    assert decoded.status is IntakeStatus.INVALID and decoded.http_status == 422
    return [(p.field, p.reason) for p in decoded.problems]


def test_dialer_intake_request_becomes_a_call_list_row() -> None:
    decoded = ok(
        request(
            first_name="Li",
            timezone="Asia/Shanghai",
            priority=7,
            fields={"product": "Fund A", "amount": "1000"},
            request_id="order-1",
        )
    )
    assert decoded.request_id == "order-1"
    header, values = decoded.as_row()
    assert header == [*STANDARD_COLUMNS, "product", "amount"]
    row = dict(zip(header, values, strict=True))
    assert row["phone"] == "+8613812345678" and row["priority"] == "7" and row["amount"] == "1000"
    # The importer's own row checks take it as they take a CSV row.
    spec = CampaignSpec(kind=CampaignKind.COMPLIANCE_CALLBACK, flow="f.yaml", region="CN")
    parsed = RowParser(header, spec).parse(0, values)
    assert isinstance(parsed, ContactRow)
    assert parsed.fields == {"product": "Fund A", "amount": "1000"} and parsed.priority == 7


def test_dialer_intake_same_data_hashes_like_the_same_csv_row() -> None:
    spec = CampaignSpec(kind=CampaignKind.RETENTION, flow="f.yaml", region="US")
    header, values = ok(request(phone="+14155550123", cooling_off_end=..., fields={"loan": "L1"})).as_row()
    from_json = RowParser(header, spec).parse(0, values)
    csv_header = ["phone", "first_name", "last_name", "timezone", "cooling_off_end", "priority", "loan"]
    from_csv = RowParser(csv_header, spec).parse(2, ["(415) 555-0123", "", "", "", "", "", "L1"])
    assert isinstance(from_json, ContactRow) and isinstance(from_csv, ContactRow)
    assert from_json.source_hash == from_csv.source_hash


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "not JSON: Expecting value"),
        (b'{"phone": "+1"', "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"phone": "+1", "phone": "+2"}', "the key 'phone' appears twice"),
        (b'{"phone": "+1", "priority": NaN}', "NaN is not a JSON number"),
        (b'{"priority": Infinity}', "Infinity is not a JSON number"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"priority": ' + b"9" * 5000 + b"}", "not JSON this service reads"),
    ],
)
def test_dialer_intake_malformed_bodies_are_400(body: bytes, fragment: str) -> None:
    decoded = refused(body)
    assert decoded.status is IntakeStatus.MALFORMED and decoded.http_status == 400
    assert fragment in decoded.message and "nothing stored" in decoded.message


@pytest.mark.parametrize("body", [b"[]", b'"+14155550123"', b"42", b"null", b"true"])
def test_dialer_intake_body_must_be_an_object(body: bytes) -> None:
    assert problems(body)[0][0] == "body"


def test_dialer_intake_lists_every_problem_by_field() -> None:
    body = request(
        phone=14155550123,
        first_name=["Li"],
        last_name={"x": 1},
        timezone=True,
        priority="5",
        fields={"ok": "1", "n": 2, "": "x", "phone": "x"},
        request_id=17,
        extra="x",
    )
    found = problems(body)
    assert ("phone", "expected a string, got a number") in found
    assert ("first_name", "expected a string, got a list") in found
    assert ("last_name", "expected a string, got an object") in found
    assert ("timezone", "expected a string, got true") in found
    assert ("priority", "expected an integer, got a string") in found
    assert ("fields.n", "expected a string, got a number") in found
    assert ("fields.", "a field name is empty") in found
    assert ("fields.phone", "'phone' is a request field: send it at the top level") in found
    assert ("request_id", "expected a string, got a number") in found
    assert any(f == "extra" and r.startswith("unknown field") for f, r in found)
    answer = refused(body)
    assert answer.request_id is None  # an invalid request_id is not echoed
    assert "nothing stored" in answer.message


LONE = "not valid Unicode (a lone surrogate at character 1)"
MANY = {f"k{i}": "v" for i in range(MAX_FIELDS + 1)}


@pytest.mark.parametrize(
    ("values", "field", "reason"),
    [
        ({"priority": 1.5}, "priority", "expected an integer, got a number with a fraction"),
        ({"priority": True}, "priority", "expected an integer, got true"),
        ({"phone": None}, "phone", "missing (required)"),
        ({"phone": ...}, "phone", "missing (required)"),
        ({"fields": ["a"]}, "fields", "expected an object of names to strings, got a list"),
        ({"first_name": "x" * (MAX_TEXT + 1)}, "first_name", "is 1,001 characters long (at most 1,000)"),
        ({"first_name": "\ud800"}, "first_name", f"is {LONE}"),
        ({"fields": {"\ud800": "x"}}, "fields.\\ud800", f"the name is {LONE}"),
        ({"fields": {"a\x1bb": "x"}}, "fields.a\\x1bb", "the name contains the control character U+001B ESC"),
        ({"fields": MANY}, "fields", f"has {MAX_FIELDS + 1} entries (at most {MAX_FIELDS})"),
        (
            {"fields": {"x" * 101: "v"}},
            f"fields.{'x' * 57}...",
            "the name is 101 characters long (at most 100)",
        ),
        ({"request_id": ""}, "request_id", "is empty"),
        ({"request_id": "a\tb"}, "request_id", "contains a tab"),
        ({"request_id": "a\nb"}, "request_id", "contains the control character U+000A LF (line feed)"),
        ({"request_id": "r" * 129}, "request_id", "is 129 characters long (at most 128)"),
    ],
)
def test_dialer_intake_hostile_values_are_named(values: dict[str, object], field: str, reason: str) -> None:
    found = problems(request(**values))
    assert any(f == field and r.startswith(reason) for f, r in found), found


def test_dialer_intake_unknown_field_names_are_shown_safely() -> None:
    found = problems(request(**{"\x00evil\x1b[31m": 1}))
    assert found[0][0] == "\\x00evil\\x1b[31m"


def test_dialer_intake_control_characters_in_values_are_left_to_the_row_checks() -> None:
    # The importer's row checks own this rule (same message as a CSV cell); decoding passes it on.
    decoded = ok(request(first_name="Li\x00Wei"))
    header, values = decoded.as_row()
    spec = CampaignSpec(kind=CampaignKind.COMPLIANCE_CALLBACK, flow="f.yaml", region="CN")
    rejects = RowParser(header, spec).parse(0, values)
    assert isinstance(rejects, list) and rejects[0].field == "first_name"


def test_dialer_intake_valid_request_id_is_echoed_in_refusals() -> None:
    answer = refused(request(phone=5, request_id="req-9"))
    assert answer.request_id == "req-9" and answer.body()["request_id"] == "req-9"


def test_dialer_intake_masked_answer_hides_numbers_in_reasons() -> None:
    answer = IntakeAnswer(
        IntakeStatus.INVALID,
        "refused",
        (Problem("phone", "'13812345678' is not a valid number for its country"), Problem("x", "row 12345")),
    )
    masked = answer.body(mask=True)["problems"]
    assert masked[0]["reason"] == "'*********78' is not a valid number for its country"
    assert masked[1]["reason"] == "row 12345"
    assert answer.body()["problems"][0]["reason"].startswith("'13812345678'")


def test_dialer_intake_label_escapes_and_cuts() -> None:
    assert label("a\x00b") == "a\\x00b"
    assert label("\udcff") == "\\udcff"
    assert label("x" * 100, 10) == "xxxxxxx..."


# -- HTTP pieces -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"  Bearer   {TOKEN}  ", True),
        (f"Bearer {TOKEN}x", False),
        (f"Bearer {TOKEN[:-1]}", False),
        (f"Basic {TOKEN}", False),
        (TOKEN, False),
        ("Bearer ", False),
        ("", False),
        (None, False),
        ("Bearer \u00e9" + TOKEN, False),
    ],
)
def test_dialer_intake_bearer_tokens(header: str | None, allowed: bool) -> None:
    tokens = (b"another-token-0123456789", TOKEN.encode())
    assert authorized(header, tokens) is allowed


def test_dialer_intake_no_tokens_means_nobody() -> None:
    assert not authorized(f"Bearer {TOKEN}", ())


def test_dialer_intake_tokens_from_env_and_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"\n{TOKEN}\n  next-token-abcdefghij  \n", encoding="utf-8")
    path.chmod(0o600)
    tokens = load_tokens(IntakeSettings(token="env-token-0123456789", token_file=str(path)))
    assert tokens == (b"env-token-0123456789", TOKEN.encode(), b"next-token-abcdefghij")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_dialer_intake_token_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "tokens"
    path.write_text(TOKEN, encoding="utf-8")
    path.chmod(mode)
    with pytest.raises(IntakeConfigError, match=rf"may read it \(mode {mode:04o}\); run: chmod 600"):
        load_tokens(IntakeSettings(token_file=str(path)))


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("short\n", ":1: the token is shorter than 16 characters"),
        (f"{TOKEN}\nbad token with spaces!!\n", ":2: the token has characters a bearer token cannot have"),
        ("\n\n", "holds no token"),
    ],
)
def test_dialer_intake_bad_token_files_never_show_the_token(
    tmp_path: Path, content: str, fragment: str
) -> None:
    path = tmp_path / "tokens"
    path.write_text(content, encoding="utf-8")
    path.chmod(0o600)
    with pytest.raises(IntakeConfigError) as caught:
        load_tokens(IntakeSettings(token_file=str(path)))
    assert fragment in str(caught.value)
    assert "short" not in str(caught.value).replace("shorter", "") and "spaces" not in str(caught.value)


def test_dialer_intake_token_file_missing_or_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(IntakeConfigError, match="cannot read"):
        load_tokens(IntakeSettings(token_file=str(tmp_path / "absent")))
    with pytest.raises(IntakeConfigError, match="not a regular file"):
        load_tokens(IntakeSettings(token_file=str(tmp_path)))


def test_dialer_intake_short_env_token_is_refused() -> None:
    with pytest.raises(IntakeConfigError, match="IVR_INTAKE__TOKEN is shorter than 16"):
        load_tokens(IntakeSettings(token="tiny"))


def test_dialer_intake_token_is_env_only_and_never_shown() -> None:
    settings = load_settings(env={"IVR_INTAKE__TOKEN": TOKEN, "IVR_INTAKE__HTTP_PORT": "8089"})
    assert settings.intake.token == TOKEN and settings.intake.http_port == 8089
    assert TOKEN not in repr(settings)
    with pytest.raises(ConfigError, match=r"IVR_INTAKE__TOKEN or intake\.token_file"):
        load_settings(overrides={"intake.token": TOKEN}, env={})
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"IVR_INTAKE__TOKEN": "a\x01" + TOKEN})
    assert TOKEN not in str(caught.value)


def test_dialer_intake_settings_ranges() -> None:
    with pytest.raises(ConfigError, match=r"intake\.max_body_bytes"):
        load_settings(env={"IVR_INTAKE__MAX_BODY_BYTES": "10"})
    with pytest.raises(ConfigError, match=r"intake\.http_port"):
        load_settings(env={"IVR_INTAKE__HTTP_PORT": "70000"})
    assert IntakeSettings().http_port == 0 and IntakeSettings().bind_address == "127.0.0.1"


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("application/json", True),
        ("Application/JSON; charset=UTF-8", True),
        ('application/json; charset="utf-8"', True),
        ("application/json; charset=latin-1", False),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("application/jsonp", False),
        ("", False),
        (None, False),
    ],
)
def test_dialer_intake_content_type(content_type: str | None, accepted: bool) -> None:
    assert _is_json(content_type) is accepted


def test_dialer_intake_rate_limit_per_client() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=3)
    assert [limiter.check("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.check("a", 0.0) == pytest.approx(0.5)
    assert limiter.check("b", 0.0) == 0.0  # another address has its own bucket
    assert limiter.check("a", 0.5) == 0.0  # refilled at 2 per second


def test_dialer_intake_rate_limit_forgets_the_least_recent_clients() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_clients=2)
    limiter.check("a", 0.0)
    limiter.check("b", 0.0)
    limiter.check("c", 0.0)  # "a" is forgotten: memory stays bounded whatever the addresses
    assert limiter.check("a", 0.0) == 0.0
    assert limiter.check("c", 0.0) > 0


# -- MQTT topics ----------------------------------------------------------------------------------
def test_dialer_intake_topics() -> None:
    mqtt = MqttSettings(topic_prefix="/ivr/")
    assert intake_topics(mqtt, IntakeSettings()) == ("ivr/dialer/intake", "ivr/dialer/intake/+")
    shared = intake_topics(mqtt, IntakeSettings(mqtt_share_group="dialers"))
    assert shared[1] == "$share/dialers/ivr/dialer/intake/+"
    with pytest.raises(EventPublishError, match="mqtt_share_group"):
        intake_topics(mqtt, IntakeSettings(mqtt_share_group="a/b"))
