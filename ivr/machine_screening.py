"""The first seconds of an outbound call: is it a person or an answering machine?

Plain logic over frames (the detector is :mod:`media.amd`); the call session feeds it the
callee's frames and asks, once per tick, whether screening is over. With a message to leave,
screening goes on after a machine verdict until the beep (or the greeting's end) says "speak now".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from media.amd import AmdConfig, AmdVerdict, AnsweringMachineDetector, MessageCue, Verdict
from media.frames import Frame


@dataclass(frozen=True)
class MachineScreening:
    """Outbound calls: listen for an answering machine before the flow speaks.

    On a machine, ``message`` is left after the beep when set, else the call is hung up.
    """

    amd: AmdConfig
    message: str = ""


class Screener:
    """One call's screening; see the module docstring."""

    def __init__(self, screening: MachineScreening) -> None:
        self.message = screening.message
        config = dataclasses.replace(screening.amd, wait_for_beep=bool(screening.message))
        self._detector = AnsweringMachineDetector(config, answered_at=0.0)
        self._pending: list[AmdVerdict | MessageCue] = []
        self.verdict: Verdict | None = None
        self.done = False

    def push_frame(self, frame: Frame, at_s: float) -> None:
        if not self.done:
            self._pending += self._detector.push_frame(frame, at_s)

    def poll(self, now_s: float) -> list[AmdVerdict]:
        """Verdicts reached since the last poll (to log); sets :attr:`done` when screening ends."""
        events, self._pending = self._pending, []
        if not self.done:
            events += self._detector.poll(now_s)
        verdicts: list[AmdVerdict] = []
        for event in events:
            if isinstance(event, AmdVerdict):
                self.verdict = event.verdict
                verdicts.append(event)
                if event.verdict is not Verdict.MACHINE or not self.message:
                    self.done = True
            else:  # MessageCue: the machine is recording now
                self.done = True
        return verdicts
