"""Who may send HTTP intake requests: bearer tokens, loaded at start and compared in constant time.

Tokens come from ``IVR_INTAKE__TOKEN`` or ``intake.token_file`` (one per line, so a new one can
be rolled out before the old one is removed). A file other users could read, or a token too
short to resist guessing, stops intake at start rather than serving with a weak secret. No
token is ever shown in an error or a log line.
"""

from __future__ import annotations

import hmac
import stat
from collections.abc import Sequence
from pathlib import Path

from config.errors import ConfigError
from config.settings import IntakeSettings

MIN_TOKEN_LENGTH = 16
MAX_TOKEN_LENGTH = 4096
MAX_TOKEN_FILE_BYTES = 64 * 1024
# RFC 6750 b64token: what may follow "Bearer ".
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")


class IntakeConfigError(ConfigError):
    """Intake cannot start as configured (token, certificate, port); the message says why."""


def load_tokens(settings: IntakeSettings) -> tuple[bytes, ...]:
    """Every accepted token: ``IVR_INTAKE__TOKEN`` and each non-empty line of ``token_file``.

    Raises :class:`IntakeConfigError` (never showing a token) for a file others may read, a
    file that cannot be read, a token too short or with characters a bearer token cannot have.
    """
    tokens: list[str] = []
    if settings.token:
        tokens.append(_checked(settings.token.strip(), "IVR_INTAKE__TOKEN"))
    if settings.token_file:
        path = Path(settings.token_file).expanduser()
        for number, line in enumerate(_token_lines(path), 1):
            if token := line.strip():
                tokens.append(_checked(token, f"intake.token_file {path}:{number}: the token"))
        if not tokens:
            raise IntakeConfigError(f"intake.token_file {path}: holds no token")
    return tuple(dict.fromkeys(t.encode("ascii") for t in tokens))


def _checked(token: str, where: str) -> str:
    """``token``, or :class:`IntakeConfigError` saying (at ``where``) what is wrong with it."""
    if len(token) < MIN_TOKEN_LENGTH:
        problem = f"is shorter than {MIN_TOKEN_LENGTH} characters"
    elif len(token) > MAX_TOKEN_LENGTH:
        problem = f"is longer than {MAX_TOKEN_LENGTH} characters"
    elif not set(token) <= _TOKEN_CHARS:
        problem = "has characters a bearer token cannot have (letters, digits and -._~+/= only)"
    else:
        return token
    raise IntakeConfigError(f"{where} {problem}")


def _token_lines(path: Path) -> list[str]:
    """The lines of a token file only its owner may read."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise IntakeConfigError(f"intake.token_file {path}: not a regular file")
        if info.st_mode & 0o077:
            raise IntakeConfigError(
                f"intake.token_file {path}: other users may read it"
                f" (mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}"
            )
        if info.st_size > MAX_TOKEN_FILE_BYTES:
            raise IntakeConfigError(f"intake.token_file {path}: larger than 64 KiB; one token per line")
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise IntakeConfigError(f"intake.token_file {path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise IntakeConfigError(f"intake.token_file {path}: not UTF-8 text") from None


def authorized(header: str | None, tokens: Sequence[bytes]) -> bool:
    """``Authorization: Bearer <token>`` names an accepted token (every one is compared, each in
    constant time, so the time taken says nothing about which or how much matched)."""
    if not header or not tokens:
        return False
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    candidate = credentials.strip().encode("latin-1", "replace")[:MAX_TOKEN_LENGTH]
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(candidate, token)
    return matched
