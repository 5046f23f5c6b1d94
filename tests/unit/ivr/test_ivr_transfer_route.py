"""Where a flow's transfer target rings, and the ringback the caller hears meanwhile."""

from __future__ import annotations

import numpy as np

from config.settings import TransferSettings
from ivr.transfer import Route, route
from media.frames import FRAME_BYTES
from media.tones import ringback_frames

SETTINGS = TransferSettings(queues={"cards": "sip:6001@pbx.example"})


def test_queue_names_map_to_their_sip_uri() -> None:
    assert route("queue:cards", SETTINGS) == Route("sip:6001@pbx.example")
    assert route(" cards ", SETTINGS) == Route("sip:6001@pbx.example")


def test_unknown_queue_says_which_setting_is_missing() -> None:
    expected = Route(None, "no SIP URI for queue 'loans' (set transfer.queues.loans)")
    assert route("queue:loans", SETTINGS) == expected


def test_sip_uris_are_dialled_unless_turned_off() -> None:
    assert route("sip:agent@10.0.0.5", SETTINGS).uri == "sip:agent@10.0.0.5"
    closed = TransferSettings(allow_sip_uris=False)
    assert route("sip:agent@10.0.0.5", closed).uri is None


def test_ringback_is_two_seconds_of_440_plus_480_then_four_of_silence() -> None:
    frames = ringback_frames()
    assert len(frames) == 300 and all(len(f) == FRAME_BYTES for f in frames)
    pcm = np.frombuffer(b"".join(frames), dtype="<i2").astype(np.float64)
    on, off = pcm[:16000], pcm[16000:]
    assert not off.any()
    spectrum = np.abs(np.fft.rfft(on))
    peaks = sorted(np.argsort(spectrum)[-2:] * 8000 / on.size)
    assert peaks == [440.0, 480.0]
