"""Replaying a call through :class:`CallCore` without sockets, threads or sleeps.

:class:`SimulatedCall` plays the adapter's part with the real, pure pieces: a
:class:`MediaBridge` carries the frames (one ``tick`` is one 20 ms media clock tick), prompts are
"rendered" as tone frames of a fixed length, and every command the core returns is kept with the
time it was returned at, so tests assert on what the call did and when.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from config.settings import MediaSettings
from flows import FlowSession, load_flow
from flows.model import Flow
from ivr.call_core import CallCore
from ivr.call_vocabulary import (
    AsrResults,
    Command,
    Connected,
    CoreEvent,
    MediaDrained,
    PlayPrompt,
    PromptQueued,
    RunAsr,
    SendHangup,
    StopPlayback,
    Tick,
    WriteTurn,
)
from ivr.machine_screening import MachineScreening
from ivr.media_bridge import MediaBridge
from media.asr.base import FinalResult
from media.frames import FRAME_SAMPLES, SILENCE, Frame
from media.pipeline import AsrFinal, CallMediaPipeline
from media.vad import VadBackend

T0 = 1000.0
WALL_OFFSET = 1_772_445_600.0 - T0  # the flow's clock reads 2026-03-02 10:00 UTC at T0


def tone(amplitude: int = 8000, hz: float = 440.0) -> bytes:
    t = np.arange(FRAME_SAMPLES) / 8000.0
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


SPEECH = tone(12000, 220.0)
PROMPT_FRAME = tone(6000, 500.0)


class LoudnessVad(VadBackend):
    """Speech is anything loud: the replay decides who speaks, not a model."""

    def score(self, frame: Frame) -> float:
        return 1.0 if float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) > 1000 else 0.0


def load_test_flow(tmp_path: Path, text: str) -> Flow:
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    return load_flow(path)


@dataclass
class SimulatedCall:
    core: CallCore
    bridge: MediaBridge = field(default_factory=MediaBridge)
    now: float = T0
    prompt_frames: int = 50
    log: list[tuple[float, Command]] = field(default_factory=list)
    asr_work: list[RunAsr] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        flow: Flow,
        *,
        prompt_frames: int = 50,
        max_duration_s: float = 3600.0,
        screening: MachineScreening | None = None,
        variables: dict[str, object] | None = None,
    ) -> SimulatedCall:
        pipeline = CallMediaPipeline(MediaSettings(), vad=LoudnessVad(), in_band_dtmf=False)
        session = FlowSession(flow, variables or {}, None)
        core = CallCore(
            "test-call",
            session,
            pipeline,
            connected_at=T0,
            wall_offset=WALL_OFFSET,
            max_duration_s=max_duration_s,
            screening=screening,
        )
        call = cls(core, prompt_frames=prompt_frames)
        call.feed(Connected())
        return call

    # -- driving -------------------------------------------------------------------
    def feed(self, event: CoreEvent) -> list[Command]:
        out = self.core.handle(event, self.now)
        self.log += [(self.now, c) for c in out]
        follow_ups: list[CoreEvent] = []
        for command in out:
            if isinstance(command, PlayPrompt):
                frames = [PROMPT_FRAME] * self.prompt_frames
                self.bridge.play(command.prompt_id, frames)
                follow_ups.append(PromptQueued(command.prompt_id, len(frames)))
            elif isinstance(command, StopPlayback):
                self.bridge.stop_playback()
            elif isinstance(command, RunAsr):
                self.asr_work.append(command)
        for event_ in follow_ups:
            out += self.feed(event_)
        return out

    def tick(self, count: int = 1, caller: bytes | None = bytes(FRAME_SAMPLES * 2)) -> None:
        """``count`` media ticks in which the caller sends ``caller`` (None: no RTP)."""
        for _ in range(count):
            self.bridge.put_caller_frame(caller)
            self.bridge.take_bot_frame()
            self.now += 0.02
            records = self.bridge.drain()
            frames = [
                SILENCE if r.pcm is None else np.frombuffer(r.pcm, "<i2").astype(np.int16) for r in records
            ]
            self.feed(MediaDrained(records, frames))
            deadline = self.core.next_deadline()
            if deadline is not None and self.now >= deadline:
                self.feed(Tick())

    def until_quiet(self, limit_s: float = 30.0) -> None:
        """Tick with a silent caller until no prompt is playing or queued."""
        end = self.now + limit_s
        while self.core.prompts_busy and self.now < end:
            self.tick()

    def hear(self, text: str, confidence: float = 0.9, in_grammar: bool = True) -> list[Command]:
        """The recognizer's answer for an utterance that just ended."""
        at = self.core.caller_position_s
        final = AsrFinal(FinalResult(text, confidence, in_grammar=in_grammar), at - 1.0, at)
        return self.feed(AsrResults([final]))

    # -- reading ---------------------------------------------------------------------
    def commands(self, kind: type[Command]) -> list[Command]:
        return [c for _, c in self.log if isinstance(c, kind)]

    def prompts(self) -> list[str]:
        return [c.text for c in self.commands(PlayPrompt) if isinstance(c, PlayPrompt)]

    def turns(self, speaker: str) -> list[WriteTurn]:
        return [c for c in self.commands(WriteTurn) if isinstance(c, WriteTurn) and c.speaker == speaker]

    def hangups(self) -> Sequence[float]:
        return [t for t, c in self.log if isinstance(c, SendHangup)]
