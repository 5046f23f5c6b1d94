"""Log lines: masked numbers, one line of key=values. The crash-traceback test starts a
process of its own and is in tests/component/ivr/test_ivr_crash_tracebacks.py."""

from __future__ import annotations

import logging

import pytest

from config.logs import KeyValueFormatter, mask_number


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("+15550100123", "+*********23"),
        ("sip:+15550100123@10.0.0.1:5060", "sip:+*********23@10.0.0.1:5060"),
        ('"Test Caller" <sip:+15550100123@127.0.0.1>', "sip:+*********23@127.0.0.1"),
        ("sip:ivr@127.0.0.1", "sip:***@127.0.0.1"),
        ("sip:@host", "sip:***@host"),
        ("1234", "****"),
    ],
)
def test_mask_number_keeps_only_the_last_two_digits(raw: str, masked: str) -> None:
    assert mask_number(raw) == masked


def test_formatter_writes_one_line_of_key_values() -> None:
    record = logging.LogRecord("ivr.call", logging.INFO, __file__, 1, "call.ended", None, None)
    record.fields = {"call_id": "abc", "reason": 'said "bye"\nthen left'}
    line = KeyValueFormatter().format(record)
    assert "\n" not in line
    assert "event=call.ended" in line and "call_id=abc" in line
    assert 'reason="said \\"bye\\"\\nthen left"' in line
