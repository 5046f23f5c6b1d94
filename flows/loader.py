"""Loading a flow file (and the files it includes) into a validated :class:`~flows.model.Flow`.

Every problem in every file is collected in one pass; :func:`load_flow` raises the errors all
at once (a flow with warnings only loads, and keeps them in ``Flow.warnings``);
:func:`validate_paths` returns them for ``flows validate``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.actions import DtmfSettings, Listen
from flows.business_hours import BusinessHours, parse_business_hours
from flows.errors import FlowValidationError, Problem
from flows.matching import PhraseMatcher
from flows.model import BUILTIN_GLOBALS, Flow, Intent, Metadata, Ref, Settings, Step
from flows.outcomes import Declared, negative_steps
from flows.schema import Reader
from flows.slots import max_keys
from flows.slots import phrases as slot_phrases
from flows.steps import StepContext, TemplateUse, parse_step
from flows.validator import validate_flow
from flows.yaml_source import MarkedDict, MarkedList, Pos, read_marked

TOP_KEYS = ("flow", "settings", "variables", "business_hours", "globals", "negative_outcomes", "steps")
INCLUDED_TOP_KEYS = ("flow", "variables", "business_hours", "steps")
META_KEYS = ("name", "version", "language", "voice", "rate", "barge_in", "description", "start")
SETTINGS_KEYS = (
    "no_input_timeout",
    "inter_digit_timeout",
    "max_no_input",
    "max_no_match",
    "confirm_below",
    "reject_below",
    "on_failure",
    "failure_prompt",
    "failure_outcome",
    "hangup_outcome",
    "no_input_prompts",
    "no_match_prompts",
    "help_prompt",
    "confirm_prompt",
    "confirm_rejected_prompt",
    "confirm_negative_prompt",
    "ask_again_prompt",
)
GLOBAL_KEYS = ("phrases", "dtmf", "goto", "label")
DEFAULT_GLOBALS: dict[str, Intent] = {
    "agent": Intent(
        "agent",
        (
            "agent",
            "operator",
            "representative",
            "talk to a person",
            "speak to someone",
            "a real person",
            "human",
        ),
        "0",
        "",
        "talk to an agent",
    ),
    "repeat": Intent(
        "repeat",
        ("repeat", "repeat that", "say that again", "come again", "pardon"),
        "*",
        "",
        "repeat that",
        "repeat",
    ),
    "help": Intent("help", ("help", "what are my options", "i need help"), "", "", "help", "help"),
    "goodbye": Intent("goodbye", ("goodbye", "bye", "bye bye", "hang up"), "", "", "end the call"),
}


@dataclass
class _Build:
    """Everything gathered while reading the main file and its includes."""

    problems: list[Problem] = field(default_factory=list)
    steps: dict[str, Step] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    business_hours: dict[str, BusinessHours] = field(default_factory=dict)
    templates: list[TemplateUse] = field(default_factory=list)
    defined: set[str] = field(default_factory=set)
    sources: list[Path] = field(default_factory=list)
    stack: list[Path] = field(default_factory=list)
    globals: tuple[Intent, ...] = ()
    refs: list[Ref] = field(default_factory=list)


def load_flow(path: str | Path) -> Flow:
    """Load and validate a flow; raises :class:`FlowValidationError` listing every error."""
    flow, problems = _load(Path(path))
    if flow is None:
        errors = [p for p in problems if not p.is_warning]
        raise FlowValidationError(errors or [Problem(str(path), 1, 1, "flow could not be loaded")])
    return flow


def validate_paths(paths: Iterable[str | Path], *, warnings: bool = False) -> list[Problem]:
    """Every error (and with ``warnings`` every warning too) in every flow file; a directory
    means each ``*.yaml`` directly in it."""
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        if path.is_dir() and not files:
            problems.append(Problem(str(path), 1, 1, "folder holds no flow files (*.yaml, *.yml)"))
        for file in files:
            problems.extend(p for p in _load(file)[1] if warnings or not p.is_warning)
    return sorted(problems)


def _load(path: Path) -> tuple[Flow | None, list[Problem]]:
    build = _Build()
    data, problems = read_marked(path, str(path))
    build.problems.extend(problems)
    build.sources.append(path)
    if data is None:
        return None, build.problems
    reader = Reader(str(path))
    reader.check_keys(data, TOP_KEYS, "flow file")
    meta_raw = reader.mapping(data, "flow", "flow file") or MarkedDict()
    meta_raw.setdefault("name", path.stem)
    reader.check_keys(meta_raw, META_KEYS, "flow")
    metadata = Metadata(
        name=reader.text(meta_raw, "name", "flow"),
        version=reader.text(meta_raw, "version", "flow", "1"),
        language=reader.text(meta_raw, "language", "flow", "en-US"),
        voice=reader.text(meta_raw, "voice", "flow", "en-us"),
        rate=reader.integer(meta_raw, "rate", "flow", 165, 40, high=600),
        barge_in=reader.boolean(meta_raw, "barge_in", "flow", True),
        description=reader.text(meta_raw, "description", "flow"),
    )
    settings_raw = reader.mapping(data, "settings", "flow file") or MarkedDict()
    settings = _settings(reader, settings_raw)
    if settings.on_failure:
        line, col = settings_raw.where_value("on_failure")
        build.refs.append(Ref(settings.on_failure, str(path), line, col, "settings.on_failure"))
    build.globals = _globals(reader, data, build.refs)
    declared = _negative_outcomes(reader, data)
    build.stack.append(path.resolve())
    start = _read_steps(reader, data, path, prefix="", return_to=None, build=build)
    start = reader.text(meta_raw, "start", "flow") or start
    if "start" in meta_raw and start not in build.steps:
        reader.report(meta_raw.where_value("start"), f"flow.start: unknown step '{start}'")
    build.problems.extend(reader.problems)
    flow = Flow(
        metadata,
        settings,
        build.variables,
        build.business_hours,
        build.globals,
        build.steps,
        start,
        path,
        tuple(build.sources),
        negative_outcomes=tuple(name for name, _ in declared or ()),
    )
    build.problems.extend(validate_flow(flow, build.templates, build.defined, build.refs, declared))
    problems = sorted(set(build.problems))
    if any(not problem.is_warning for problem in problems):
        return None, problems
    _compile(flow)
    flow.warnings = problems
    return flow, problems


def _settings(reader: Reader, raw: MarkedDict) -> Settings:
    reader.check_keys(raw, SETTINGS_KEYS, "settings")
    d = Settings()
    w = "settings"
    return Settings(
        no_input_timeout_s=reader.duration(raw, "no_input_timeout", w, d.no_input_timeout_s),
        inter_digit_timeout_s=reader.duration(raw, "inter_digit_timeout", w, d.inter_digit_timeout_s),
        max_no_input=reader.integer(raw, "max_no_input", w, d.max_no_input, 1),
        max_no_match=reader.integer(raw, "max_no_match", w, d.max_no_match, 1),
        confirm_below=reader.fraction(raw, "confirm_below", w, d.confirm_below),
        reject_below=reader.fraction(raw, "reject_below", w, d.reject_below),
        on_failure=reader.text(raw, "on_failure", w),
        failure_prompt=reader.text(raw, "failure_prompt", w, d.failure_prompt),
        failure_outcome=reader.text(raw, "failure_outcome", w, d.failure_outcome),
        hangup_outcome=reader.text(raw, "hangup_outcome", w, d.hangup_outcome),
        no_input_prompts=reader.texts(raw, "no_input_prompts", w) or d.no_input_prompts,
        no_match_prompts=reader.texts(raw, "no_match_prompts", w) or d.no_match_prompts,
        help_prompt=reader.text(raw, "help_prompt", w, d.help_prompt),
        confirm_prompt=reader.text(raw, "confirm_prompt", w, d.confirm_prompt),
        confirm_rejected_prompt=reader.text(raw, "confirm_rejected_prompt", w, d.confirm_rejected_prompt),
        confirm_negative_prompt=reader.text(raw, "confirm_negative_prompt", w, d.confirm_negative_prompt),
        ask_again_prompt=reader.text(raw, "ask_again_prompt", w, d.ask_again_prompt),
    )


def _negative_outcomes(reader: Reader, data: MarkedDict) -> Declared | None:
    """``negative_outcomes``: a list of outcome names (or one), each with its position."""
    if "negative_outcomes" not in data:
        return None
    names = reader.texts(data, "negative_outcomes", "flow file")  # reports what is not text
    value = data["negative_outcomes"]
    if not isinstance(value, MarkedList):
        return [(name, data.where_value("negative_outcomes")) for name in names]
    return [
        (str(item), value.where(index))
        for index, item in enumerate(value)
        if isinstance(item, str | int | float) and not isinstance(item, bool)
    ]


def _globals(reader: Reader, data: MarkedDict, refs: list[Ref]) -> tuple[Intent, ...]:
    """Built-in global intents (on unless turned off) plus the flow's own."""
    raw = reader.mapping(data, "globals", "flow file") or MarkedDict()
    steps = data.get("steps")
    steps = steps if isinstance(steps, dict) else {}
    out: list[Intent] = []
    for name in (*BUILTIN_GLOBALS, *(n for n in raw if n not in BUILTIN_GLOBALS)):
        spec = raw.get(name, True)
        base = DEFAULT_GLOBALS.get(name, Intent(name))
        if spec is False:
            continue
        if spec is True or spec is None:
            spec = MarkedDict()
        if not isinstance(spec, MarkedDict):
            reader.report(raw.where_value(name), f"globals.{name}: expected a mapping or false")
            continue
        where = f"globals.{name}"
        reader.check_keys(spec, GLOBAL_KEYS, where)
        goto = reader.text(spec, "goto", where)
        if goto:
            line, col = spec.where_value("goto")
            refs.append(Ref(goto, reader.file, line, col, f"{where}.goto"))
        if base.action == "goto" and not goto:
            if name in steps:
                goto = name
            else:
                pos = (
                    raw.where_key(name)
                    if name in raw
                    else data.where_key("steps")
                    if "steps" in data
                    else (1, 1)
                )
                reader.report(
                    pos,
                    f"{where}: needs goto (there is no step named '{name}'); "
                    f"or turn it off with '{name}: false'",
                )
        out.append(
            Intent(
                name,
                reader.texts(spec, "phrases", where) or base.phrases,
                reader.text(spec, "dtmf", where, base.dtmf),
                goto,
                reader.text(spec, "label", where, base.label or name.replace("_", " ")),
                base.action,
            )
        )
    return tuple(out)


def _read_steps(
    reader: Reader, data: MarkedDict, path: Path, *, prefix: str, return_to: str | None, build: _Build
) -> str:
    """Parse the ``variables``, ``business_hours`` and ``steps`` of one file; returns its start step."""
    variables = reader.mapping(data, "variables", "flow file") or MarkedDict()
    for name, value in variables.items():
        build.variables.setdefault(name, value)
        build.defined.add(name)
    calendars = reader.mapping(data, "business_hours", "flow file") or MarkedDict()
    for name, spec in calendars.items():
        if not isinstance(spec, MarkedDict):
            reader.report(calendars.where_value(name), f"business_hours.{name}: expected a mapping")
            continue
        reader.check_keys(spec, ("timezone", "hours", "holidays", "description"), f"business_hours.{name}")
        calendar = parse_business_hours(name, spec, reader.report)
        if calendar is not None:
            build.business_hours[name] = calendar
    steps = reader.mapping(data, "steps", "flow file")
    if not steps:
        reader.report(data.where_key("steps") if "steps" in data else (1, 1), "flow file: missing steps")
        return ""

    def include(target: str, pos: Pos, caller: str, after: str) -> str | None:
        return _include(reader, path, target, pos, caller=caller, after=after, build=build)

    ctx = StepContext(prefix, build.globals, include, return_to, build.templates, build.defined)
    for name, raw in steps.items():
        step = parse_step(reader, name, raw, steps.where_key(name), ctx)
        if step is not None:
            build.steps[step.name] = step
    return prefix + next(iter(steps))


def _include(
    reader: Reader, base: Path, target: str, pos: Pos, *, caller: str, after: str, build: _Build
) -> str | None:
    """Read an included file's steps as ``caller/step``; returns the first step to run."""
    if not target:
        reader.report(pos, "subflow: missing file name")
        return None
    try:
        path = (base.parent / target).resolve()
        found = path.is_file()
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long for the file system
        reader.report(pos, f"subflow file {target[:80]!r} is not a usable path: {exc}"[:300])
        return None
    if path in build.stack:
        reader.report(
            pos,
            f"subflow '{target}' includes itself (cycle: "
            f"{' -> '.join(p.name for p in [*build.stack, path])})",
        )
        return None
    if not found:
        reader.report(pos, f"subflow file '{target[:200]}' not found (looked in {path.parent})")
        return None
    shown = str(Path(base.parent, target))
    data, problems = read_marked(path, shown, "subflow file", "a mapping with steps:")
    build.problems.extend(problems)
    build.sources.append(path)
    if data is None:
        return None
    sub = Reader(str(Path(base.parent, target)))
    sub.check_keys(data, INCLUDED_TOP_KEYS, "subflow file")
    meta = data.get("flow") if isinstance(data.get("flow"), MarkedDict) else MarkedDict()
    build.stack.append(path)
    start = _read_steps(sub, data, path, prefix=caller + "/", return_to=after, build=build)
    build.stack.pop()
    if isinstance(meta, MarkedDict) and meta.get("start"):
        start = f"{caller}/{meta['start']}"
    build.problems.extend(sub.problems)
    return start


def _compile(flow: Flow) -> None:
    """Per-step matchers and ``Listen`` actions, built once so a turn does no set-up work."""
    flow.negative_steps = negative_steps(flow)
    for step in flow.steps.values():
        ask = step.ask
        if ask is None:
            continue
        active = tuple(g for g in flow.globals if ask.globals is None or g.name in ask.globals)
        flow.matchers[step.name] = PhraseMatcher(ask.intents, active)
        phrases: dict[str, None] = {}
        for intent in (*ask.intents, *active):
            phrases.update(dict.fromkeys(intent.phrases))
        if ask.slot is not None:
            phrases.update(dict.fromkeys(slot_phrases(ask.slot)))
        closed = (ask.slot is None or ask.slot.type == "yes_no") and not ask.other
        open_vocabulary = ask.open_vocabulary if ask.open_vocabulary is not None else not closed
        digits = max_keys(ask.slot) if ask.slot is not None and ask.slot.dtmf_is_data else 1
        flow.listens[step.name] = Listen(
            step=step.name,
            phrases=tuple(phrases),
            open_vocabulary=open_vocabulary,
            dtmf=DtmfSettings(True, digits, "#", flow.settings.inter_digit_timeout_s),
            no_input_timeout_s=ask.no_input_timeout_s or flow.settings.no_input_timeout_s,
            slot=ask.slot.type if ask.slot is not None else "",
        )
