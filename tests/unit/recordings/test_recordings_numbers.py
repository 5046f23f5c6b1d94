"""Numbers as keyed hashes: one token per number whatever its format, a private key file, and
search forms that find a number however the trunk presented it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from recordings import RecordingError
from recordings.numbers import NumberKey, load_number_key, number_token, search_tokens


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("given", "token"),
    [
        ("+15550100123", "15550100123"),
        ("+1 (555) 010-0123", "15550100123"),
        ("sip:+15550100123@10.0.0.1:5060;user=phone", "15550100123"),
        ('"Jane Doe" <sip:+15550100123@pbx.example.com>;tag=1', "15550100123"),
        ("tel:+44-7700-900123", "447700900123"),
        ("sip:Anonymous@anonymous.invalid", "anonymous"),
        ("sip:@10.0.0.1", ""),
        ("", ""),
    ],
)
def test_number_token_keeps_only_what_identifies_the_number(given: str, token: str) -> None:
    assert number_token(given) == token


def test_search_forms_cover_e164_national_and_international_prefix() -> None:
    assert search_tokens("+1 (555) 010-0123", "US") == ("15550100123", "0015550100123", "5550100123")
    assert search_tokens("07700 900123", "GB") == (
        "07700900123",
        "447700900123",
        "00447700900123",
        "7700900123",
    )
    assert search_tokens("anonymous", "US") == ("anonymous",)
    with pytest.raises(RecordingError, match="no digits to search for"):
        search_tokens(" - ", "US")


def test_a_number_recorded_in_one_form_is_found_from_another(tmp_path: Path) -> None:
    key = load_number_key(tmp_path / "keys" / "numbers.key")
    stored = key.digest("sip:5550100123@trunk")  # the trunk sent the national form
    assert stored in key.search_digests("+1 555 010 0123", "US")
    assert key.digest("sip:+15550100123@x") in key.search_digests("(555) 010-0123", "US")
    assert key.digest("sip:@x") == ""
    other = NumberKey(b"\x01" * 32, tmp_path / "other")
    assert other.digest("+15550100123") != key.digest("+15550100123")  # keyed: no rainbow table
    assert len(stored) == 64 and "5550100123" not in stored


def test_key_file_is_created_private_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys" / "recordings-numbers.key"
    first = load_number_key(path)
    assert (mode(path), mode(path.parent), mode(tmp_path / "data")) == (0o600, 0o700, 0o700)
    assert len(path.read_text().strip()) == 64
    again = load_number_key(path)
    assert again.secret == first.secret and again.key_id == first.key_id and len(first.key_id) == 16
    assert "secret" not in repr(first) or first.secret.hex() not in repr(first)


def test_a_readable_or_damaged_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "numbers.key"
    load_number_key(path)
    path.chmod(0o644)
    with pytest.raises(RecordingError, match=r"readable by group or others \(mode 0644\).*chmod 600"):
        load_number_key(path)
    path.chmod(0o600)
    path.write_text("not a key\n")
    with pytest.raises(RecordingError, match="not a number key"):
        load_number_key(path)
