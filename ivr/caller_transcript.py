"""The caller's side of the transcript, with PCI redaction by design.

Keys and speech collected while the recording is paused, or by a question that saves into a
variable named like a PIN, card number, expiry or CVV, never reach the transcript (PCI DSS):
keyed digits become one ``[redacted: N digits]`` turn once the caller is done keying, speech
becomes ``[redacted speech]``. Pure: fed positions on the call's media clock, it returns the
turns to write.
"""

from __future__ import annotations

from ivr.call_vocabulary import WriteTurn

SENSITIVE_NAMES = (
    "pin",
    "card",
    "cvv",
    "cvc",
    "expiry",
    "ssn",
    "passcode",
    "password",
    "iban",
    "account_number",
)
"""An ``ask`` saving into a variable whose name contains one of these collects sensitive data."""


def is_sensitive_name(variable: str) -> bool:
    name = variable.lower()
    return bool(name) and any(token in name for token in SENSITIVE_NAMES)


class CallerTranscript:
    """See the module docstring. ``sensitive`` is decided by the caller per input."""

    def __init__(self) -> None:
        self.recording_paused = False
        self._keys = 0  # sensitive digits keyed since the last caller turn
        self._keys_from = 0.0

    def digit(self, digit: str, at_s: float, sensitive: bool) -> list[WriteTurn]:
        if sensitive or self.recording_paused:
            if self._keys == 0:
                self._keys_from = at_s
            self._keys += 1
            return []
        return self.turn(f"#{digit}", at_s, at_s)

    def speech(
        self, text: str, start_s: float, end_s: float, confidence: float, sensitive: bool
    ) -> list[WriteTurn]:
        redact = (sensitive or self.recording_paused) and bool(text)
        return self.turn("[redacted speech]" if redact else text, start_s, end_s, confidence)

    def turn(
        self, text: str, start_s: float, end_s: float, confidence: float | None = None
    ) -> list[WriteTurn]:
        return [*self.flush(end_s), WriteTurn("caller", text, start_s, end_s, confidence)]

    def flush(self, at_s: float) -> list[WriteTurn]:
        """The pending redacted keys as one turn (the caller is done keying)."""
        if not self._keys:
            return []
        count, self._keys = self._keys, 0
        unit = "digit" if count == 1 else "digits"
        return [
            WriteTurn("caller", f"[redacted: {count} {unit}]", self._keys_from, max(at_s, self._keys_from))
        ]
