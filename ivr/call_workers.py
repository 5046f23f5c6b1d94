"""A call's work off the event loop: prompts rendered by TTS, and recognizer work run in order.

Both run on shared worker threads from tasks of their own (rendering on
:attr:`CallServices.executor`, recognizer waits on :attr:`CallServices.asr_executor`),
and post what they produced back to the call session as core events: :class:`PromptQueued` once
a prompt's frames are on the bridge, :class:`AsrResults` for each batch of recognizer work. A
task that fails is logged and asks for the call to be hung up; it never fails silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from config.logs import log_event
from ivr.call_services import CallServices
from ivr.call_vocabulary import AsrResults, CoreEvent, PlayPrompt, PromptQueued, RunAsr
from ivr.media_bridge import MediaBridge
from media import pipeline as mp
from media.speech_chunks import speech_chunks
from media.tts import prompt_frames

_log = logging.getLogger("ivr.call")


class CallWorkers:
    """See the module docstring. ``post`` hands an event to the session; ``on_failure`` hangs up."""

    def __init__(
        self,
        key: int,
        call_id: str,
        services: CallServices,
        post: Callable[[CoreEvent], None],
        on_failure: Callable[[str], None],
    ) -> None:
        self._key = key
        self._call_id = call_id
        self._services = services
        self._post = post
        self._on_failure = on_failure
        self._asr_queue: asyncio.Queue[RunAsr] = asyncio.Queue()
        self._render_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def start_asr(self, feeder: mp.AsrFeeder) -> None:
        """Start the task that runs recognizer work, strictly in order (see :meth:`run_asr`)."""
        self._spawn(self._asr_loop(feeder), "asr")

    def run_asr(self, command: RunAsr) -> None:
        self._asr_queue.put_nowait(command)

    def render(self, command: PlayPrompt, bridge: MediaBridge, voice: str, rate: int) -> None:
        """Render a prompt and queue its frames on ``bridge``; posts :class:`PromptQueued`."""
        self._spawn(self._render(command, bridge, voice, rate), f"prompt-{command.prompt_id}")

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _render(self, command: PlayPrompt, bridge: MediaBridge, voice: str, rate: int) -> None:
        """Render piece by piece (:func:`~media.speech_chunks.speech_chunks`): the first piece
        goes on the line, and :class:`PromptQueued` to the core, while the rest is rendered.

        Prompts render one at a time, so a prompt's pieces are never interleaved with the
        next prompt's; a barge-in (the bridge's ``stops`` moves on) drops the pieces left.
        A piece the TTS cache holds in memory (every static prompt and every template's fixed
        first piece, pre-rendered at start) goes on the line from the event loop at once: the
        shared worker threads also wait on recognizer answers for every call, and a reply must
        not queue behind them.
        """
        loop = asyncio.get_running_loop()
        services = self._services
        pieces = speech_chunks(command.text) or [command.text]
        async with self._render_lock:
            stops = bridge.stops
            for index, piece in enumerate(pieces):
                loaded = services.tts.cached(piece, voice, rate)
                if loaded is not None:
                    frames = prompt_frames(loaded)
                else:
                    frames = await loop.run_in_executor(
                        services.executor, services.render_frames, piece, voice, rate
                    )
                if index and bridge.stops != stops:
                    return  # cut by a barge-in or hang-up while this piece rendered
                bridge.play(command.prompt_id, frames, final=index == len(pieces) - 1)
                if index == 0:
                    self._post(PromptQueued(command.prompt_id, len(frames)))
                    stops = bridge.stops

    async def _asr_loop(self, feeder: mp.AsrFeeder) -> None:
        """Recognizer work, strictly in order, one batch at a time in a worker thread."""
        loop = asyncio.get_running_loop()
        while True:
            command = await self._asr_queue.get()
            work = list(command.work)
            while not self._asr_queue.empty():  # fell behind: one batch is cheaper
                work += self._asr_queue.get_nowait().work
            results = await loop.run_in_executor(self._services.asr_executor, feeder.run, work)
            if results:
                self._post(AsrResults(results))

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=f"call-{self._key}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log_event(
                "call.task_failed",
                logging.ERROR,
                _log,
                call_id=self._call_id,
                task=task.get_name(),
                error=repr(task.exception()),
            )
            self._on_failure("internal error")
