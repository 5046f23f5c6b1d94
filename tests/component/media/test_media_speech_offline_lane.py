"""The speech pool's offline lane for real: QA re-transcription shares the workers with live
calls, live utterances keep their latency, and a worker killed mid-job fails over with an event."""

from __future__ import annotations

import logging
import os
import signal
import statistics
import threading
import time
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from config.settings import MediaSettings
from media.asr.remote import RemoteAsrEngine
from media.frames import split_frames
from media.speech_pool import SpeechPool
from recordings.retranscribe import Retranscriber, utterances
from tests.component.media.test_media_asr_pocketsphinx import MENU, speak

pytestmark = pytest.mark.component

SENTENCES = (
    "Private funds carry a high level of risk.",
    "Yes yes go on, I understand.",
    "The value of your investment can go down as well as up.",
    "I would like to hear it again please.",
)
PHRASES = ("private funds carry a high level of risk", "yes yes go on i understand", "read it again")
"""What QA listens for (a grammar, like a live step): the words its rules can use."""


@pytest.fixture(scope="module")
def pool() -> Iterator[SpeechPool]:
    speech = SpeechPool(MediaSettings(), workers=1, log_level="warning")
    speech.start()
    yield speech
    speech.stop()


@pytest.fixture(scope="module")
def long_track() -> npt.NDArray[np.int16]:
    """A half-minute caller track: the sentences, twice, with pauses between them."""
    return np.concatenate([speak(text) for text in SENTENCES * 2])


def live_latency(engine: RemoteAsrEngine, frames: list[npt.NDArray[np.int16]]) -> float:
    """Seconds from the end of a live utterance (the flush) to its final result."""
    stream = engine.open_stream(MENU)
    try:
        stream.push_frames(frames)
        started = time.monotonic()
        assert stream.flush().text.lower() == "check my balance"
        return time.monotonic() - started
    finally:
        stream.close()


def test_offline_jobs_do_not_delay_a_live_utterance(
    pool: SpeechPool, long_track: npt.NDArray[np.int16]
) -> None:
    live = pool.engine()
    frames = split_frames(speak("Check my balance"))
    live_latency(live, frames)  # warm the decoder
    alone = [live_latency(live, frames) for _ in range(6)]
    offline = Retranscriber(pool.offline_engine())
    one_request = []  # what a live flush may wait behind: one offline utterance's decode
    for _ in range(3):
        started = time.monotonic()
        offline.turns(speak(SENTENCES[2]), "caller", "probe", PHRASES)
        one_request.append(time.monotonic() - started)

    stop = threading.Event()
    decoded: list[int] = []

    def batch() -> None:  # four QA jobs at once, as fast as the offline lane serves them
        transcriber = Retranscriber(pool.offline_engine())
        while not stop.is_set():
            decoded.append(len(transcriber.turns(long_track, "caller", "qa-load", PHRASES)))

    jobs = [threading.Thread(target=batch, daemon=True) for _ in range(4)]
    for job in jobs:
        job.start()
    time.sleep(1.0)  # the offline lane is busy
    busy = [live_latency(live, frames) for _ in range(6)]
    stop.set()
    for job in jobs:
        job.join(60)
    assert decoded, "the offline jobs never finished a track: the lane starved completely"
    # One worker serves both lanes: a live flush waits behind one offline request at most, never
    # behind the jobs' queued audio (seconds of it). CPU shared with the jobs' own threads and the
    # other tests of a loaded machine slows both lanes, hence the margin.
    bound = statistics.median(alone) + 2 * statistics.median(one_request) + 0.2
    assert statistics.median(busy) < bound, (alone, busy, one_request)


def test_a_worker_killed_during_an_offline_job_fails_over_with_an_event(
    long_track: npt.NDArray[np.int16], caplog: pytest.LogCaptureFixture
) -> None:
    speech = SpeechPool(MediaSettings(), workers=2, log_level="warning")
    speech.start()
    try:
        engine = speech.offline_engine()
        transcriber = Retranscriber(engine, retry_delay_s=0.2)
        result: list[list[dict[str, object]]] = []
        with caplog.at_level(logging.WARNING, logger="ivr.recordings"):
            job = threading.Thread(
                target=lambda: result.append(transcriber.turns(long_track, "caller", "c1", PHRASES))
            )
            job.start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # wait until the job is on a worker
                busy = [link.address for link in list(engine._links.values()) if link.streams]
                if busy:
                    break
                time.sleep(0.01)
            (address,) = busy
            victim = next(w for w in speech._workers if str(w.offline_socket) == address)
            assert victim.proc is not None
            os.kill(victim.proc.pid, signal.SIGKILL)
            job.join(60)
        assert not job.is_alive(), "the offline job hung after its worker died"
        (turns,) = result
        assert len(turns) == len(utterances(long_track))
        assert "qa.retranscribe_retry" in caplog.text
        assert all(turn["retranscribed"] for turn in turns)
    finally:
        speech.stop()
