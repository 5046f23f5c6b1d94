"""The call core's flow side: carrying out the flow's actions, and feeding it their results.

:class:`FlowActions` runs the :class:`~flows.FlowSession`: it feeds it the events the call
collected (prompts finished, speech, digits, timeouts, a transfer's result) and carries out the
actions it returns, in order. A prompt holds back the actions behind it until it is rendered,
so "say, then ask" never listens before the caller has heard the question. It also keeps the
inter-digit timer and the call's outcome. Sans-I/O, like the rest of the core.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence

from config.logs import log_event, mask_target
from flows import (
    Action,
    EmitEvent,
    HangUp,
    Listen,
    NoInput,
    PauseRecording,
    Play,
    ResumeRecording,
    SetOutcome,
    Transfer,
    TransferResult,
)
from ivr.call_media import CallMedia
from ivr.call_state import CallState
from ivr.call_vocabulary import PromptQueued, Publish, StartTransfer, TransferUpdate
from supervision.alert_rules import RuleAction

_log = logging.getLogger("ivr.call")


class FlowActions:
    """See the module docstring."""

    def __init__(self, state: CallState, media: CallMedia) -> None:
        self._state = state
        self._media = media
        self._held: deque[Action] = deque()  # flow actions waiting behind a prompt's render
        self._transfer_target = ""
        self.digit_deadline: float | None = None
        self.outcome = ""
        """The outcome a ``hangup`` or ``outcome`` action set (the flow's own wins, see summary)."""

    def start(self) -> None:
        self._state.flow_started = True
        self._state.flow_started_at = self._state.now
        self.apply(self._state.flow.start(self._state.utc()))

    def drain(self) -> None:
        """Feed the flow what the call collected, and carry out what it answers."""
        state = self._state
        while state.flow_inbox:
            event = state.flow_inbox.popleft()
            if state.flow_started and not state.flow.finished:
                self.apply(state.flow.handle(event, state.utc()))

    def apply(self, actions: Sequence[Action]) -> None:
        state = self._state
        self._held.extend(actions)
        while self._held and not self._media.rendering:
            self._do(self._held.popleft())
        if state.flow.keys_pending and (listen := state.flow.listen) is not None and state.flow_started:
            self.digit_deadline = state.now + listen.dtmf.inter_digit_timeout_s
        else:
            self.digit_deadline = None

    def rendered(self, event: PromptQueued) -> None:
        """A prompt was rendered and queued: carry on with what waited behind it."""
        if self._media.rendered(event):
            self.apply([])

    def check_digit_timeout(self) -> None:
        if self.digit_deadline is not None and self._state.now >= self.digit_deadline:
            self.digit_deadline = None
            self._state.flow_inbox.append(NoInput())

    def transfer_update(self, event: TransferUpdate) -> None:
        state = self._state
        if event.agent_left:
            if not state.hangup_requested:
                log_event("call.agent_hung_up", logger=_log, call_id=state.call_id)
                state.hangup_requested = True
            return
        name = "transferred" if event.success else "transfer_failed"
        target = mask_target(self._transfer_target)
        log_event(f"call.{name}", logger=_log, call_id=state.call_id, target=target, reason=event.reason)
        state.out.append(Publish(name, {"target": target, "reason": event.reason}))
        state.flow_inbox.append(TransferResult(success=event.success, reason=event.reason))

    def alert_actions(self, actions: deque[RuleAction]) -> None:
        """Carry out what fired alert rules ask: jump to a step of the flow; ``offer_agent`` jumps
        where the flow's ``agent`` global intent leads (every flow has one unless it turned it
        off). Skipped, and logged, when the flow lacks the step, is over, or the call is in a
        transfer: the flow stays valid whatever the rules say."""
        state = self._state
        while actions:
            if self._media.rendering:
                return  # a prompt is being rendered: jump once it is on the line (then cut it)
            action = actions.popleft()
            flow = state.flow
            step = action.goto or next((i.goto for i in flow.flow.globals if i.name == "agent"), "")
            usable = (
                state.flow_started and not flow.finished and not state.gone and flow.state != "transferring"
            )
            if not usable or step not in flow.flow.steps:
                log_event("call.alert_action_skipped", logger=_log, call_id=state.call_id, step=step)
                continue
            log_event("call.alert_action", logger=_log, call_id=state.call_id, step=step)
            self._held.clear()
            self._media.stop_listening()
            self._media.interrupt()
            self.apply(flow.jump(step, state.utc()))

    def _do(self, action: Action) -> None:
        state = self._state
        media = self._media
        if isinstance(action, Play):
            if not state.gone:  # else nobody is left to hear it
                media.render(action)
        elif isinstance(action, Listen):
            media.listen(action)
        elif isinstance(action, HangUp):
            self.outcome = action.outcome
            media.stop_listening()
            state.hangup_requested = True
        elif isinstance(action, SetOutcome):
            self.outcome = action.outcome
        elif isinstance(action, PauseRecording):
            media.set_recording(paused=True)
        elif isinstance(action, ResumeRecording):
            media.set_recording(paused=False)
        elif isinstance(action, EmitEvent):
            state.out.append(Publish("flow_event", {"name": action.name, **dict(action.data)}))
        elif isinstance(action, Transfer):
            self._transfer_target = action.target
            media.stop_listening()
            state.out.append(StartTransfer(action.target))
