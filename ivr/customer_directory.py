"""Who is calling: the account behind the caller's number, for flows that route on it.

The directory is a CSV file (``directory.path`` in the settings) with a ``phone`` column and any
other columns (``tier``, ``pin``, ``balance``, ``card_last4``, ...). Numbers are normalized to
E.164 with ``phonenumbers`` on load and at lookup, so ``+1 (555) 010-0123`` and ``15550100123``
find the same row. A flow sees the result as ``account`` with ``found: true|false``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import phonenumbers

from config.errors import IvrError


class DirectoryError(IvrError):
    """The directory file is unreadable or a row is unusable; the message names file and row."""


class CustomerDirectory:
    def __init__(self, accounts: Mapping[str, Mapping[str, str]], region: str = "US") -> None:
        self._accounts = dict(accounts)
        self.region = region

    @classmethod
    def empty(cls) -> CustomerDirectory:
        return cls({})

    @classmethod
    def load(cls, path: Path, region: str = "US") -> CustomerDirectory:
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if reader.fieldnames is None or "phone" not in reader.fieldnames:
                    raise DirectoryError(f"{path}:1: header must have a 'phone' column")
                accounts: dict[str, dict[str, str]] = {}
                for row_number, row in enumerate(reader, start=2):
                    number = normalize(row.get("phone") or "", region)
                    if number is None:
                        raise DirectoryError(
                            f"{path}:{row_number}: phone: {row.get('phone')!r} is not a valid number"
                        )
                    if number in accounts:
                        raise DirectoryError(f"{path}:{row_number}: phone: duplicate of an earlier row")
                    accounts[number] = {k: (v or "") for k, v in row.items() if k and k != "phone"}
        except OSError as exc:
            raise DirectoryError(f"{path}: cannot read customer directory: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise DirectoryError(f"{path}: not UTF-8 text ({exc.reason})") from exc
        return cls(accounts, region)

    def lookup(self, caller: str) -> dict[str, object]:
        """``account`` for a flow: the row's fields plus ``found`` (False when unknown)."""
        number = normalize(caller, self.region)
        row = self._accounts.get(number) if number else None
        if row is None:
            return {"found": False}
        return {**row, "found": True, "number": number}

    def __len__(self) -> int:
        return len(self._accounts)


def normalize(raw: str, region: str) -> str | None:
    """E.164 for a dialled or presented number, or None when it is not a valid number."""
    text = raw.strip()
    if not text:
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
