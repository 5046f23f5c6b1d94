"""Prompts go on the line piece by piece: the first piece plays while the rest renders."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np

from ivr.call_services import CallServices
from ivr.call_vocabulary import CoreEvent, PlayPrompt, PromptQueued, RunAsr
from ivr.call_workers import CallWorkers
from ivr.media_bridge import MediaBridge
from media.frames import FRAME_BYTES, FRAME_SAMPLES


class _Tts:
    """The TTS cache's memory: pieces listed in ``loaded`` are there (one frame per character)."""

    def __init__(self) -> None:
        self.loaded: set[str] = set()

    def cached(self, text: str, voice: str, rate: int) -> np.ndarray | None:
        return np.zeros(FRAME_SAMPLES * len(text), np.int16) if text in self.loaded else None


class _Services:
    """Renders each piece as one frame per character, and can hold a piece back."""

    def __init__(self, threads: int = 2) -> None:
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="render")
        self.asr_executor = ThreadPoolExecutor(threads, thread_name_prefix="asr")
        self.tts = _Tts()
        self.rendered: list[str] = []
        self.hold: dict[str, threading.Event] = {}

    def render_frames(self, text: str, voice: str, rate: int) -> list[bytes]:
        gate = self.hold.get(text)
        if gate is not None:
            gate.wait(5)
        self.rendered.append(text)
        return [bytes(FRAME_BYTES)] * len(text)


def _workers(services: _Services, posted: list[CoreEvent]) -> CallWorkers:
    return CallWorkers(1, "c1", cast(CallServices, services), posted.append, lambda reason: None)


def _bot_frames(bridge: MediaBridge) -> list[tuple[int | None, bool]]:
    out = []
    while bridge.playing:
        bridge.take_bot_frame()
    for record in bridge.drain():
        out.append((record.prompt_id, record.last_of_prompt))
    return out


async def _settle(workers: CallWorkers) -> None:
    while workers._tasks:
        await asyncio.gather(*workers._tasks)


def test_pieces_play_in_order_and_only_the_last_frame_ends_the_prompt() -> None:
    async def run() -> tuple[list[CoreEvent], list[tuple[int | None, bool]], list[str]]:
        services, bridge = _Services(), MediaBridge()
        posted: list[CoreEvent] = []
        workers = _workers(services, posted)
        workers.render(PlayPrompt(7, "I heard: two tickets. Is that right?", True, "s"), bridge, "en-us", 165)
        await _settle(workers)
        return posted, _bot_frames(bridge), services.rendered

    posted, frames, rendered = asyncio.run(run())
    assert rendered == ["I heard:", "two tickets.", "Is that right?"]
    assert posted == [PromptQueued(7, len("I heard:"))]  # the core hears of it after piece one
    assert len(frames) == len("I heard:two tickets.Is that right?")
    assert [last for _id, last in frames].count(True) == 1 and frames[-1] == (7, True)


def test_the_next_prompt_waits_for_every_piece_of_the_one_before() -> None:
    async def run() -> list[tuple[int | None, bool]]:
        services, bridge = _Services(), MediaBridge()
        posted: list[CoreEvent] = []
        services.hold["Second piece."] = gate = threading.Event()
        workers = _workers(services, posted)
        workers.render(PlayPrompt(1, "First piece. Second piece.", True, "s"), bridge, "en-us", 165)
        workers.render(PlayPrompt(2, "Next prompt.", True, "s"), bridge, "en-us", 165)
        await asyncio.sleep(0.1)  # piece one is on the bridge, piece two is held
        gate.set()
        await _settle(workers)
        return _bot_frames(bridge)

    ids = [prompt_id or 0 for prompt_id, _last in asyncio.run(run())]
    assert ids == sorted(ids)  # no frame of prompt 2 between prompt 1's pieces


def test_a_barge_in_while_a_piece_renders_drops_the_rest() -> None:
    async def run() -> tuple[list[Any], list[str]]:
        services, bridge = _Services(), MediaBridge()
        posted: list[CoreEvent] = []
        services.hold["Second piece."] = gate = threading.Event()
        workers = _workers(services, posted)
        workers.render(PlayPrompt(1, "First piece. Second piece. Third.", True, "s"), bridge, "en-us", 165)
        await asyncio.sleep(0.1)
        bridge.stop_playback()  # what the session does for StopPlayback
        gate.set()
        await _settle(workers)
        return _bot_frames(bridge), services.rendered

    frames, rendered = asyncio.run(run())
    assert frames == [] and "Third." not in rendered


def test_a_loaded_piece_goes_on_the_line_while_every_worker_thread_is_busy() -> None:
    """The worker threads also wait on recognizer answers for every call: a reply whose first
    piece the cache holds in memory must not queue behind them."""

    async def run() -> tuple[list[CoreEvent], list[str], list[str]]:
        services, bridge = _Services(threads=1), MediaBridge()
        services.tts.loaded.add("I heard:")
        busy = threading.Event()
        services.executor.submit(busy.wait, 5)  # another call's recognizer work holds the thread
        posted: list[CoreEvent] = []
        workers = _workers(services, posted)
        workers.render(PlayPrompt(3, "I heard: two tickets.", True, "s"), bridge, "en-us", 165)
        await asyncio.sleep(0.1)
        early, rendered_early = list(posted), list(services.rendered)
        busy.set()
        await _settle(workers)
        return early, rendered_early, services.rendered

    early, rendered_early, rendered = asyncio.run(run())
    assert early == [PromptQueued(3, len("I heard:"))]  # on the line before the thread was free
    assert rendered_early == [] and rendered == ["two tickets."]  # the rest rendered after it


class _SlowFeeder:
    """A recognizer request that waits for a busy speech worker until ``answer`` is set."""

    def __init__(self) -> None:
        self.answer = threading.Event()
        self.threads: list[str] = []

    def run(self, work: Any) -> list[Any]:
        self.threads.append(threading.current_thread().name)
        self.answer.wait(5)
        return []


def test_an_uncached_prompt_renders_while_recognizer_requests_wait() -> None:
    """Calls waiting on recognizer answers hold ASR threads, never the rendering threads."""

    async def run() -> tuple[list[CoreEvent], list[str]]:
        services, bridge = _Services(threads=1), MediaBridge()
        feeder = _SlowFeeder()
        posted: list[CoreEvent] = []
        waiting = _workers(services, [])
        waiting.start_asr(cast(Any, feeder))
        waiting.run_asr(RunAsr(()))
        await asyncio.sleep(0.05)
        workers = _workers(services, posted)
        workers.render(PlayPrompt(4, "Not cached.", True, "s"), bridge, "en-us", 165)
        for _ in range(100):
            if posted:
                break
            await asyncio.sleep(0.01)
        early = list(posted)
        feeder.answer.set()
        await _settle(workers)
        waiting.cancel()
        return early, feeder.threads

    early, threads = asyncio.run(run())
    assert early == [PromptQueued(4, len("Not cached."))]
    assert [name.split("_")[0] for name in threads] == ["asr"]
