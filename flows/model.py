"""The loaded, validated form of a flow: immutable data the session walks.

A flow file becomes a :class:`Flow` through :func:`flows.loader.load_flow`; nothing here
reads files or clocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.actions import Listen
from flows.business_hours import BusinessHours
from flows.errors import Problem
from flows.templates import is_template

if TYPE_CHECKING:
    from flows.matching import PhraseMatcher

SLOT_TYPES = ("yes_no", "digits", "number", "currency", "date", "time", "text")
CONFIRM_MODES = ("auto", "always", "negative", "never")
BUILTIN_GLOBALS = ("agent", "repeat", "help", "goodbye")


@dataclass(frozen=True)
class Metadata:
    """Who the flow is and how it sounds; the call uses ``voice``/``rate`` for TTS."""

    name: str
    version: str = "1"
    language: str = "en-US"
    voice: str = "en-us"
    rate: int = 165
    barge_in: bool = True
    description: str = ""


@dataclass(frozen=True)
class Settings:
    """Flow-wide robustness defaults; an ``ask`` step may override most of them."""

    no_input_timeout_s: float = 6.0
    inter_digit_timeout_s: float = 3.0
    max_no_input: int = 3
    max_no_match: int = 3
    confirm_below: float = 0.5
    reject_below: float = 0.15
    on_failure: str = ""
    failure_prompt: str = "Sorry, I'm having trouble understanding you. Please call again later. Goodbye."
    failure_outcome: str = "failed"
    hangup_outcome: str = "abandoned"
    no_input_prompts: tuple[str, ...] = (
        "Sorry, I didn't hear anything.",
        "Sorry, I still didn't hear you. You can also use your telephone keypad.",
    )
    no_match_prompts: tuple[str, ...] = (
        "Sorry, I didn't understand.",
        "Sorry, I still didn't get that. You can also use your telephone keypad.",
    )
    help_prompt: str = (
        "You can answer by speaking or with your telephone keypad. "
        "Say agent or press 0 at any time to talk to a person, or say repeat to hear that again."
    )
    confirm_prompt: str = "I think you said {{ heard }}. Is that right?"
    confirm_rejected_prompt: str = "Sorry about that. Let's try again."
    confirm_negative_prompt: str = "Just to be sure: you want to {{ heard }}? Please say yes or no."
    ask_again_prompt: str = "Just to be sure, I'll ask you once more."


@dataclass(frozen=True)
class Ref:
    """A reference to a step name, kept with its position for validation messages."""

    target: str
    file: str
    line: int
    col: int
    what: str


@dataclass(frozen=True)
class Intent:
    """Something the caller may say (``phrases``) or key (``dtmf``) at an ``ask`` step."""

    name: str
    phrases: tuple[str, ...] = ()
    dtmf: str = ""
    goto: str = ""
    label: str = ""
    action: str = "goto"  # globals only: goto | repeat | help


@dataclass(frozen=True)
class Slot:
    """A built-in value type an ``ask`` step collects."""

    type: str
    length: int = 0
    min_length: int = 1
    max_length: int = 0
    dtmf_format: str = "MMDDYYYY"

    @property
    def dtmf_is_data(self) -> bool:
        return self.type in ("digits", "number", "currency", "date", "time")


@dataclass(frozen=True)
class Ask:
    """A question: prompt, what counts as an answer, and how hard to try."""

    prompt: tuple[str, ...]
    intents: tuple[Intent, ...] = ()
    slot: Slot | None = None
    save_as: str = ""
    next: str = ""
    yes: str = ""
    no: str = ""
    other: str = ""
    confirm: str = "auto"  # auto | always | negative | never (CONFIRM_MODES)
    confirm_prompt: str = ""
    confirm_negative_prompt: str = ""
    confirm_at: tuple[int, int] = (0, 0)  # where ``confirm:`` is written, for validation messages
    no_input_prompts: tuple[str, ...] = ()
    no_match_prompts: tuple[str, ...] = ()
    help: str = ""
    max_no_input: int = 0
    max_no_match: int = 0
    on_failure: str = ""
    no_input_timeout_s: float = 0.0
    open_vocabulary: bool | None = None
    globals: frozenset[str] | None = None


@dataclass(frozen=True)
class BranchCase:
    """``if`` condition (a template expression) and where to go; ``None`` means else."""

    condition: str | None
    goto: str


@dataclass(frozen=True)
class TransferSpec:
    target: str
    on_failure: str


@dataclass(frozen=True)
class EmitSpec:
    name: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One named step: entry effects, prompts, then exactly one way on (its terminal)."""

    name: str
    file: str
    line: int
    col: int
    set: tuple[tuple[str, Any], ...] = ()
    record: str = ""
    outcome: str | None = None  # "" clears an outcome set earlier
    emit: tuple[EmitSpec, ...] = ()
    say: tuple[str, ...] = ()
    barge_in: bool | None = None
    ask: Ask | None = None
    branch: tuple[BranchCase, ...] = ()
    transfer: TransferSpec | None = None
    hangup: str | None = None
    next: str = ""
    refs: tuple[Ref, ...] = ()

    @property
    def kind(self) -> str:
        if self.ask is not None:
            return "ask"
        if self.branch:
            return "branch"
        if self.transfer is not None:
            return "transfer"
        if self.hangup is not None:
            return "hangup"
        if self.next:
            return "next"
        return "none"

    def targets(self) -> list[str]:
        """Every step this one can lead to directly."""
        return [ref.target for ref in self.refs]


@dataclass(eq=False)
class Flow:
    """A validated flow. Treat as immutable: sessions in progress share it across reloads."""

    metadata: Metadata
    settings: Settings
    variables: dict[str, Any]
    business_hours: dict[str, BusinessHours]
    globals: tuple[Intent, ...]
    steps: dict[str, Step]
    start: str
    path: Path
    sources: tuple[Path, ...] = ()
    listens: dict[str, Listen] = field(default_factory=dict)
    matchers: dict[str, PhraseMatcher] = field(default_factory=dict)
    negative_outcomes: tuple[str, ...] = ()
    negative_steps: frozenset[str] = frozenset()  # steps that reach a negative outcome unasked
    warnings: list[Problem] = field(default_factory=list)

    def static_prompts(self) -> list[str]:
        """Every prompt without template variables, so TTS can render them ahead of calls."""
        return [text for text in self._prompt_texts() if not is_template(text)]

    def templated_prompts(self) -> list[str]:
        """Every prompt's template source that has variables (its fixed pieces render ahead)."""
        return [text for text in self._prompt_texts() if is_template(text)]

    def _prompt_texts(self) -> list[str]:
        texts: list[str] = [
            self.settings.failure_prompt,
            self.settings.help_prompt,
            self.settings.confirm_rejected_prompt,
            self.settings.ask_again_prompt,
            *self.settings.no_input_prompts,
            *self.settings.no_match_prompts,
        ]
        for step in self.steps.values():
            texts.extend(step.say)
            if step.ask is not None:
                ask = step.ask
                texts.extend(ask.prompt)
                texts.extend(ask.no_input_prompts)
                texts.extend(ask.no_match_prompts)
                texts.append(ask.help)
                texts.append(ask.confirm_negative_prompt)
        return [text for text in dict.fromkeys(texts) if text]
