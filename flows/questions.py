"""Parsing the ``ask`` part of a step: the question, its intents, slot and robustness keys."""

from __future__ import annotations

import re
from collections.abc import Callable

from flows.matching import normalize
from flows.model import CONFIRM_MODES, SLOT_TYPES, Ask, Intent, Slot
from flows.schema import Reader, did_you_mean
from flows.slots import DTMF_FORMATS
from flows.yaml_source import MarkedDict, MarkedList

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DTMF_KEY = re.compile(r"^[0-9*#A-D]$")
INTENT_KEYS = ("phrases", "dtmf", "goto", "label")


def parse_ask(
    reader: Reader,
    raw: MarkedDict,
    where: str,
    *,
    globals_: tuple[Intent, ...],
    defined: set[str],
    ref: Callable[[MarkedDict, str, str], str],
    template: Callable[..., str],
    next_step: str,
) -> Ask:
    prompt = reader.texts(raw, "ask", where)
    if not prompt or any(not text.strip() for text in prompt):
        reader.report(raw.where_value("ask"), f"{where}.ask: missing prompt (the question to ask)")
    for key in ("ask", "no_input", "no_match", "help", "confirm_prompt", "confirm_negative_prompt"):
        for text in reader.texts(raw, key, where) if key in raw else ():
            template(text, raw.where_value(key), f"{where}.{key}")
    slot = _parse_slot(reader, raw, where)
    save_as = reader.text(raw, "save_as", where)
    if save_as:
        if not VARIABLE_NAME.match(save_as):
            reader.report(raw.where_value("save_as"), f"{where}.save_as: invalid variable name '{save_as}'")
        defined.add(save_as)
    active = _active_globals(reader, raw, where, globals_)
    intents = _parse_intents(reader, raw, where, ref, active=active, slot=slot)
    is_yes_no = slot is not None and slot.type == "yes_no"
    for key in ("yes", "no"):
        if key in raw and not is_yes_no:
            reader.report(raw.where_key(key), f"{where}: '{key}' needs slot: yes_no")
    if "other" in raw and not intents:
        reader.report(raw.where_key("other"), f"{where}: 'other' needs intents (it catches everything else)")
    yes = ref(raw, "yes", f"{where}.yes") if "yes" in raw else ""
    no = ref(raw, "no", f"{where}.no") if "no" in raw else ""
    if is_yes_no and bool(yes) != bool(no):
        reader.report(
            raw.where_key("yes" if yes else "no"), f"{where}: give both yes and no (or neither and next)"
        )
    if slot is not None and not next_step and not (yes and no):
        reader.report(raw.where_key("ask"), f"{where}: ask with a slot needs next (or yes and no)")
    if slot is None and not intents:
        reader.report(
            raw.where_key("ask"), f"{where}: ask needs intents or a slot (what counts as an answer)"
        )
    vocabulary = (
        reader.choice(raw, "vocabulary", where, ("open", "grammar"), "") if "vocabulary" in raw else ""
    )
    return Ask(
        prompt=prompt,
        intents=intents,
        slot=slot,
        save_as=save_as,
        next=next_step,
        yes=yes,
        no=no,
        other=ref(raw, "other", f"{where}.other") if "other" in raw else "",
        confirm=reader.choice(raw, "confirm", where, CONFIRM_MODES, "auto"),
        confirm_prompt=reader.text(raw, "confirm_prompt", where),
        confirm_negative_prompt=reader.text(raw, "confirm_negative_prompt", where),
        confirm_at=raw.where_value("confirm") if "confirm" in raw else raw.where_key("ask"),
        no_input_prompts=reader.texts(raw, "no_input", where),
        no_match_prompts=reader.texts(raw, "no_match", where),
        help=reader.text(raw, "help", where),
        max_no_input=reader.integer(raw, "max_no_input", where, 0, 1) if "max_no_input" in raw else 0,
        max_no_match=reader.integer(raw, "max_no_match", where, 0, 1) if "max_no_match" in raw else 0,
        on_failure=ref(raw, "on_failure", f"{where}.on_failure") if "on_failure" in raw else "",
        no_input_timeout_s=reader.duration(raw, "timeout", where, 0.0),
        open_vocabulary=None if not vocabulary else vocabulary == "open",
        globals=None if "globals" not in raw else frozenset(g.name for g in active),
    )


def _parse_slot(reader: Reader, raw: MarkedDict, where: str) -> Slot | None:
    value = raw.get("slot")
    if value is None:
        return None
    if isinstance(value, str):
        value = MarkedDict({"type": value})
        value.pos = raw.where_value("slot")
    if not isinstance(value, MarkedDict):
        reader.report(raw.where_value("slot"), f"{where}.slot: expected a slot type or {{type: ..., ...}}")
        return None
    label = f"{where}.slot"
    reader.check_keys(value, ("type", "length", "min_length", "max_length", "dtmf_format"), label)
    kind = str(value.get("type", ""))
    if kind not in SLOT_TYPES:
        reader.report(
            value.where_value("type"),
            f"{label}: unknown slot type '{kind}'{did_you_mean(kind, SLOT_TYPES)}"
            f" (one of {', '.join(SLOT_TYPES)})",
        )
        return None
    for key in ("length", "min_length", "max_length"):
        if key in value and kind != "digits":
            reader.report(value.where_key(key), f"{label}: {key} applies to digits slots only")
    return Slot(
        type=kind,
        length=reader.integer(value, "length", label, 0, 1) if "length" in value else 0,
        min_length=reader.integer(value, "min_length", label, 1, 1),
        max_length=reader.integer(value, "max_length", label, 0, 1) if "max_length" in value else 0,
        dtmf_format=reader.choice(value, "dtmf_format", label, DTMF_FORMATS, "MMDDYYYY"),
    )


def _active_globals(
    reader: Reader, raw: MarkedDict, where: str, all_globals: tuple[Intent, ...]
) -> tuple[Intent, ...]:
    value = raw.get("globals")
    if value is None or value is True:
        return all_globals
    if value is False:
        return ()
    names = {g.name for g in all_globals}
    if not isinstance(value, MarkedList):
        reader.report(
            raw.where_value("globals"), f"{where}.globals: expected true, false or a list of global intents"
        )
        return all_globals
    for index, item in enumerate(value):
        if item not in names:
            reader.report(
                value.where(index),
                f"{where}.globals: unknown global intent '{item}'{did_you_mean(str(item), names)}",
            )
    return tuple(g for g in all_globals if g.name in value)


def _parse_intents(
    reader: Reader,
    raw: MarkedDict,
    where: str,
    ref: Callable[[MarkedDict, str, str], str],
    *,
    active: tuple[Intent, ...],
    slot: Slot | None,
) -> tuple[Intent, ...]:
    data = reader.mapping(raw, "intents", where)
    keys: dict[str, str] = {g.dtmf: f"global intent '{g.name}'" for g in active if g.dtmf}
    phrases: dict[tuple[str, ...], str] = {}
    for g in active:
        for phrase in g.phrases:
            phrases.setdefault(normalize(phrase), f"global intent '{g.name}'")
    if slot is not None and slot.type == "yes_no":
        keys.update({"1": "yes (slot yes_no)", "2": "no (slot yes_no)"})
    if data is None:
        return ()
    out: list[Intent] = []
    for name, spec in data.items():
        label = f"{where}.intents.{name}"
        if not isinstance(spec, MarkedDict):
            reader.report(
                data.where_value(name), f"{label}: expected {{phrases: [...], dtmf: KEY, goto: STEP}}"
            )
            continue
        reader.check_keys(spec, INTENT_KEYS, label)
        intent_phrases = reader.texts(spec, "phrases", label)
        dtmf = reader.text(spec, "dtmf", label)
        if not intent_phrases and not dtmf:
            reader.report(data.where_key(name), f"{label}: missing phrases (and no dtmf key either)")
        if dtmf and not DTMF_KEY.match(dtmf):
            reader.report(spec.where_value("dtmf"), f"{label}.dtmf: '{dtmf}' is not one key (0-9, *, #)")
        elif dtmf and slot is not None and slot.dtmf_is_data and dtmf.isdigit():
            reader.report(
                spec.where_value("dtmf"), f"{label}.dtmf: key '{dtmf}' is data in a {slot.type} slot"
            )
        elif dtmf:
            if dtmf in keys:
                reader.report(
                    spec.where_value("dtmf"),
                    f"{where}: duplicate DTMF key '{dtmf}' (intent '{name}' and {keys[dtmf]})",
                )
            keys[dtmf] = f"intent '{name}'"
        for index, phrase in enumerate(intent_phrases):
            norm = normalize(phrase)
            at = (
                spec["phrases"].where(index)
                if isinstance(spec.get("phrases"), MarkedList)
                else spec.where_value("phrases")
            )
            if not norm:
                reader.report(at, f"{label}.phrases[{index}]: empty phrase")
            elif norm in phrases:
                reader.report(
                    at, f"{where}: duplicate phrase '{phrase}' (intent '{name}' and {phrases[norm]})"
                )
            else:
                phrases[norm] = f"intent '{name}'"
        if "goto" not in spec:
            reader.report(data.where_key(name), f"{label}: missing goto (the step this intent leads to)")
        out.append(
            Intent(
                name,
                intent_phrases,
                dtmf,
                ref(spec, "goto", f"{label}.goto"),
                reader.text(spec, "label", label),
            )
        )
    return tuple(out)
