"""Phone numbers as keyed hashes: an auditor can find every call with a number, nobody can read one.

The call index never holds a number in clear: it holds ``HMAC-SHA256(key, token)``, where the
token is the number's digits (``sip:+1 (555) 010-0123@pbx`` -> ``15550100123``; a user part
without digits, such as ``anonymous``, is kept lower-cased), and the masked number for display.
The recorder writes both hashes into the sidecar (``numbers``), so ``recordings reindex``
rebuilds them without ever having seen the numbers again.

The key is 32 random bytes (hex) in one file (setting ``recordings.number_key_file``, by default
``keys/recordings-numbers.key`` under the data dir, next to the signing key), created on first
use 0600 in a 0700 folder and refused if group or others can read it. Without the key a hash
cannot be tested against candidate numbers, so a copy of the database alone reveals no number;
with it, anyone can (phone numbers are few): keep it as private as the signing key, and out of
database backups. Replacing it makes the numbers of calls recorded before unsearchable.

A search (:func:`search_tokens`) hashes the number typed in several forms, since a trunk may
present ``+15550100123``, ``15550100123`` or ``5550100123``: the digits as typed, E.164, the
international ``00`` form and the national forms of the settings' region (``directory.region``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers

from config.settings import Settings
from recordings.errors import RecordingError
from recordings.key_files import FileVersion, load_key_file

KEY_FILE_NAME = "recordings-numbers.key"
_SIP_USER = re.compile(r"^(?:sips?:|tel:)?(?P<user>[^@;>]*)", re.IGNORECASE)
_HEX_KEY = re.compile(r"[0-9a-f]{64}")


def sip_user(value: str) -> str:
    """The user part of a SIP or tel URI, or the number itself: ``"Ann" <sip:+1555@pbx>`` -> ``+1555``."""
    uri = value.strip()
    if "<" in uri:
        uri = uri.split("<", 1)[1].split(">", 1)[0]
    match = _SIP_USER.match(uri.strip())
    return match.group("user").strip() if match else ""


def remote_party(direction: str, from_masked: str, to_masked: str) -> str:
    """The other party's masked number, as a table shows it: the caller of an inbound call, the
    callee of an outbound one (``sip:*******67@10.0.0.1`` -> ``*******67``)."""
    masked = from_masked if direction == "inbound" else to_masked
    return sip_user(masked) or masked


def number_token(value: str) -> str:
    """What is hashed: the digits of a number or a SIP URI's user part (else the user, lower-cased)."""
    user = sip_user(value)
    digits = "".join(ch for ch in user if "0" <= ch <= "9")
    if digits:
        return digits
    return user.lower() if any(ch.isalnum() for ch in user) else ""


@dataclass(frozen=True)
class NumberKey:
    """The HMAC key that turns numbers into searchable hashes."""

    secret: bytes = field(repr=False)
    path: Path

    @property
    def key_id(self) -> str:
        """Names the key in sidecars (a hash of it, so a changed key is detected, never revealed)."""
        return hashlib.sha256(b"ivr-recordings-number-key:" + self.secret).hexdigest()[:16]

    def digest_token(self, token: str) -> str:
        return hmac.new(self.secret, token.encode("utf-8"), hashlib.sha256).hexdigest()

    def digest(self, number: str) -> str:
        """The keyed hash of a number or SIP URI; empty when it holds nothing to hash."""
        token = number_token(number)
        return self.digest_token(token) if token else ""

    def search_digests(self, query: str, region: str) -> tuple[str, ...]:
        """Hashes of every form ``query`` may have been recorded in (see :func:`search_tokens`)."""
        return tuple(self.digest_token(token) for token in search_tokens(query, region))


def search_tokens(query: str, region: str) -> tuple[str, ...]:
    """The tokens a number typed by an auditor may have been stored as.

    Raises :class:`RecordingError` when ``query`` holds no digit or name to look for.
    """
    first = number_token(query)
    if not first:
        raise RecordingError(f"--number {query!r}: no digits to search for (give e.g. +15550100123)")
    tokens = [first]
    text = query.strip()
    if any(ch.isdigit() for ch in text):
        with contextlib.suppress(phonenumbers.NumberParseException):
            parsed = phonenumbers.parse(text, region.upper() or None)
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
            international = number_token(e164)
            tokens += [
                international,
                f"00{international}",
                str(parsed.national_number),
                number_token(national),
            ]
    return tuple(dict.fromkeys(token for token in tokens if token))


def number_key_path(settings: Settings) -> Path:
    """The number key file the settings name (``recordings.number_key_file``, under the data dir)."""
    configured = settings.recordings.number_key_file
    if not configured:
        return default_number_key_file(settings.recordings_signing_key_path)
    return settings.data_path / Path(configured).expanduser()


def default_number_key_file(signing_key_file: Path) -> Path:
    """Next to the signing key: what the settings default (``keys/recordings-numbers.key``) names."""
    return signing_key_file.parent / KEY_FILE_NAME


_KEYS: dict[FileVersion, NumberKey] = {}


def load_number_key(path: Path) -> NumberKey:
    """The number key at ``path``, created (0600, in a 0700 folder) if missing."""

    def parse(data: bytes) -> NumberKey:
        try:
            text = data.decode("ascii").strip()
        except UnicodeDecodeError as exc:
            raise RecordingError(f"{path}: cannot read the number key: {exc}") from exc
        if not _HEX_KEY.fullmatch(text):
            raise RecordingError(f"{path}: not a number key (expected 64 hex digits on one line)")
        return NumberKey(bytes.fromhex(text), path)

    return load_key_file(
        path, "number key", lambda: (secrets.token_hex(32) + "\n").encode("ascii"), parse, _KEYS
    )
