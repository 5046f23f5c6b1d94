"""The speech service for real: worker processes decoding espeak-ng speech over Unix sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.errors import MediaError
from config.settings import MediaSettings
from media.asr.base import AsrStream, FinalResult
from media.frames import split_frames
from media.speech_pool import SpeechPool, connect
from tests.component.media.test_media_asr_pocketsphinx import MENU, speak

pytestmark = pytest.mark.component
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def pool() -> Iterator[SpeechPool]:
    speech = SpeechPool(MediaSettings(), workers=2, log_level="warning")
    speech.start()
    yield speech
    speech.stop()


def decode(stream: AsrStream, text: str) -> FinalResult:
    for frame in split_frames(speak(text)):
        stream.push_frame(frame)
    return stream.flush()


def test_a_worker_decodes_a_menu_answer(pool: SpeechPool) -> None:
    stream = pool.engine().open_stream(MENU)
    try:
        result = decode(stream, "I lost my card")
        assert result.text.lower() == "i lost my card" and result.in_grammar
        stream.set_expectation(MENU)
        assert "balance" in decode(stream, "check my balance").text.lower()
    finally:
        stream.close()


def test_many_streams_share_the_workers_and_keep_their_own_state(pool: SpeechPool) -> None:
    engine = pool.engine()
    streams = [engine.open_stream(MENU) for _ in range(4)]
    try:
        phrases = ["Pay a bill", "Opening hours", "Talk to an agent", "Check my balance"]
        audio = [list(split_frames(speak(text))) for text in phrases]
        for frames in zip(*[a[: min(map(len, audio))] for a in audio], strict=True):
            for stream, frame in zip(streams, frames, strict=True):  # interleaved, like live calls
                stream.push_frame(frame)
        for stream, rest in zip(streams, audio, strict=True):
            for frame in rest[min(map(len, audio)) :]:
                stream.push_frame(frame)
        heard = [stream.flush().text.lower() for stream in streams]
        # Each stream hears its own phrase; a carrier word ("um opening hours") may come along
        # when the menu's fit check turns the phrase down (docs/asr.md): not what this tests.
        assert all(p.lower() in h for p, h in zip(phrases, heard, strict=True)), heard
    finally:
        for stream in streams:
            stream.close()


def test_another_process_finds_the_pool_by_its_directory(pool: SpeechPool) -> None:
    assert (pool.directory.stat().st_mode & 0o777) == 0o700
    assert ((pool.directory / "key").stat().st_mode & 0o777) == 0o600
    stream = connect(pool.directory).open_stream(MENU)
    try:
        assert "opening hours" in decode(stream, "Opening hours").text.lower()  # see above
    finally:
        stream.close()


def test_a_dead_worker_fails_its_utterance_then_the_stream_moves_on(pool: SpeechPool) -> None:
    engine = pool.engine()
    stream = engine.open_stream(MENU)
    frames = list(split_frames(speak("Pay a bill")))
    stream.push_frame(frames[0])
    link = stream._link  # type: ignore[attr-defined]
    victim = next(w for w in pool._workers if str(w.socket) == link.address)
    assert victim.proc is not None
    os.kill(victim.proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while link.alive and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(MediaError, match="speech worker connection lost"):
        for frame in frames[1:]:
            stream.push_frame(frame)
        stream.flush()
    # The next utterance decodes on a live worker (the other one, or the restarted one).
    assert decode(stream, "Pay a bill").text.lower() == "pay a bill"
    stream.close()
    deadline = time.monotonic() + 20
    while victim.restarts == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert victim.restarts == 1 and victim.proc.poll() is None


def test_workers_leave_with_their_owner_even_when_it_is_killed(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from config.settings import MediaSettings\n"
        "from media.speech_pool import SpeechPool\n"
        "pool = SpeechPool(MediaSettings(), workers=1, log_level='warning')\n"
        "pool.start()\n"
        "print(pool.directory, pool._workers[0].proc.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert owner.stdout is not None
    directory, worker_pid = owner.stdout.readline().split()
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 10
    while Path(directory).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(directory).exists(), "the orphaned worker removed the pool's directory"
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(int(worker_pid), 0)
            time.sleep(0.05)
