"""Reading QA rules files: one file, text, or a folder of them, validated as a whole.

A rules file is YAML written by a compliance or QA team, so it is read like a flow file
(:mod:`flows.yaml_source`): every problem is collected in one pass and reported as
``FILE:LINE:COL: message``, and :func:`load_rules` raises them all at once
(:class:`~recordings.qa_rules.QaRulesError`). Each rule entry is read by
:mod:`recordings.qa_rule_parser`; what needs the whole file (unique ids, references between
rules) or the whole folder (one file per flow or campaign) is checked here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from flows.errors import Problem
from flows.schema import Reader, did_you_mean
from flows.yaml_source import MAX_FILE_BYTES, MarkedDict, MarkedList, Pos, load_marked, read_marked
from recordings.qa_rule_parser import names, number, read_rule
from recordings.qa_rules import (
    DEFAULT_PASS_SCORE,
    Acknowledgement,
    OutcomeConsistent,
    QaRulesError,
    RequiredPrompt,
    Rule,
    RuleCatalog,
    RuleSet,
)

RULES_SCHEMA = ("qa", "rules")
QA_KEYS = ("name", "version", "description", "applies_to", "pass_score")
APPLIES_KEYS = ("flows", "campaigns")
MAX_RULES = 200
WHAT = "QA rules file"
EXPECTED = "a mapping with qa: and rules:"


def load_rules(path: Path, display: str | None = None) -> RuleSet:
    """Read and validate one rules file; raises :class:`QaRulesError` listing every problem."""
    rules, problems = validate_rules(path, display)
    if problems or rules is None:
        raise QaRulesError(problems or [Problem(display or display_path(path), 1, 1, "no rules")])
    return rules


def validate_rules(path: Path, display: str | None = None) -> tuple[RuleSet | None, list[Problem]]:
    """The rules (``None`` if unusable) and every problem found, for a ``--check`` run."""
    name = display or display_path(path)
    data, problems = read_marked(path, name, what=WHAT, expected=EXPECTED)
    if data is None:
        return None, problems
    rules, more = _build(data, name, _file_sha256(path))
    problems = sorted(problems + more)
    return (None if problems else rules), problems


def parse_rules(text: str, file: str = "<rules>") -> RuleSet:
    """Validate rules given as text (tests, an API caller); raises :class:`QaRulesError`."""
    data, problems = load_marked(text, file, what=WHAT, expected=EXPECTED)
    if data is None:
        raise QaRulesError(problems)
    rules, more = _build(data, file, hashlib.sha256(text.encode("utf-8")).hexdigest())
    if problems or more:
        raise QaRulesError(problems + more)
    return rules


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _file_sha256(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return hashlib.sha256(handle.read(MAX_FILE_BYTES + 1)).hexdigest()
    except OSError:
        return ""


def _build(data: MarkedDict, file: str, digest: str) -> tuple[RuleSet, list[Problem]]:
    reader = Reader(file)
    reader.check_keys(data, RULES_SCHEMA, "rules file")
    head = reader.mapping(data, "qa", "rules file")
    if head is None:
        if "qa" not in data:
            reader.report(data.pos, "rules file: missing 'qa:' (name, applies_to, pass_score)")
        head = MarkedDict()
    reader.check_keys(head, QA_KEYS, "qa")
    name = reader.text(head, "name", "qa").strip()
    if "qa" in data and "name" not in head:
        reader.report(head.pos, "qa: missing 'name:'")
    elif "name" in head and not name:
        reader.report(head.where_value("name"), "qa.name: must not be empty")
    applies = reader.mapping(head, "applies_to", "qa") or MarkedDict()
    reader.check_keys(applies, APPLIES_KEYS, "qa.applies_to")
    flows = names(reader, applies, "flows", "qa.applies_to")
    campaigns = names(reader, applies, "campaigns", "qa.applies_to")
    pass_score = number(reader, head, "pass_score", "qa", (DEFAULT_PASS_SCORE, 0, 100))
    result = RuleSet(
        name=name,
        rules=tuple(_rules(reader, data)),
        file=file,
        version=reader.text(head, "version", "qa"),
        description=reader.text(head, "description", "qa"),
        flows=flows,
        campaigns=campaigns,
        pass_score=pass_score,
        sha256=digest,
        line=head.pos[0] if head else 1,
        col=head.pos[1] if head else 1,
    )
    _check_references(reader, result, data)
    return result, reader.problems


def _rules(reader: Reader, data: MarkedDict) -> list[Rule]:
    raw = data.get("rules")
    if "rules" not in data:
        reader.report(data.pos, "rules file: missing 'rules:' (a list of rules)")
        return []
    if not isinstance(raw, MarkedList):
        reader.report(data.where_value("rules"), "rules: expected a list of rules")
        return []
    if not raw:
        reader.report(data.where_value("rules"), "rules: the list is empty: give at least one rule")
    if len(raw) > MAX_RULES:
        reader.report(data.where_value("rules"), f"rules: {len(raw)} rules is too many (at most {MAX_RULES})")
        return []
    rules: list[Rule] = []
    seen: dict[str, Pos] = {}
    for index, item in enumerate(raw):
        where = f"rules[{index}]"
        if not isinstance(item, MarkedDict):
            reader.report(raw.where(index), f"{where}: expected a mapping with id: and kind:")
            continue
        rule = read_rule(reader, item, where)
        if rule is None:
            continue
        if rule.id in seen:
            first = seen[rule.id]
            reader.report(
                item.where_value("id"),
                f"{where}.id: '{rule.id}' is already the id of the rule at line {first[0]}",
            )
            continue
        seen[rule.id] = item.where_value("id")
        rules.append(rule)
    return rules


def _check_references(reader: Reader, rules: RuleSet, data: MarkedDict) -> None:
    """``after_rule`` names a required_prompt; ``requires`` names a rule that is not an outcome rule."""
    raw = data.get("rules")
    items = [item for item in raw if isinstance(item, MarkedDict)] if isinstance(raw, MarkedList) else []
    by_pos = {(item.pos[0], item.pos[1]): item for item in items}
    for rule in rules.rules:
        item = by_pos.get((rule.line, rule.col), MarkedDict())
        check = rule.check
        says = check.says if isinstance(check, Acknowledgement) else None
        holder = item
        if isinstance(check, OutcomeConsistent):
            says = check.caller_says
            raw_says = item.get("caller_says")
            holder = raw_says if isinstance(raw_says, MarkedDict) else item
        if says is not None and says.after_rule:
            pos = holder.where_value("after_rule")
            named = f"rule '{rule.id}': after_rule '{says.after_rule}'"
            target = _target(reader, rules, says.after_rule, pos, f"{named} is not a rule id")
            if target is not None and not isinstance(target.check, RequiredPrompt):
                reader.report(pos, f"{named} is a {target.kind} rule: it must name a required_prompt rule")
        if isinstance(check, OutcomeConsistent):
            pos = item.where_value("requires")
            for name in check.requires:
                named = f"rule '{rule.id}': requires '{name}'"
                target = _target(reader, rules, name, pos, f"{named}, which is not a rule id")
                if target is not None and isinstance(target.check, OutcomeConsistent):
                    reader.report(
                        pos, f"{named}, an outcome_consistent rule: name the rules it checks instead"
                    )
                elif target is not None and name == rule.id:
                    reader.report(pos, f"rule '{rule.id}': requires itself")


def _target(reader: Reader, rules: RuleSet, name: str, pos: Pos, unknown: str) -> Rule | None:
    """The rule named ``name``; if there is none, ``unknown`` is reported with a did-you-mean."""
    target = rules.rule(name)
    if target is None:
        reader.report(pos, unknown + did_you_mean(name[:100], [r.id for r in rules.rules]))
    return target


# -- a folder of rules files -----------------------------------------------------------------


def rule_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []


def load_catalog(paths: Iterable[Path]) -> RuleCatalog:
    """Load rules files (a folder means its ``*.yaml``); raises :class:`QaRulesError` with every
    problem of every file, including two files that claim the same flow or campaign."""
    problems: list[Problem] = []
    loaded: list[RuleSet] = []
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = rule_files(path)
            if not found:
                problems.append(Problem(str(path), 1, 1, "no QA rules files (*.yaml) in this folder"))
            files += found
        else:
            files.append(path)
    for path in files:
        rules, found_problems = validate_rules(path, display_path(path))
        problems += found_problems
        if rules is not None:
            loaded.append(rules)
    problems += _claims(loaded)
    if problems:
        raise QaRulesError(problems)
    return RuleCatalog(tuple(loaded))


def _claims(rule_sets: list[RuleSet]) -> list[Problem]:
    """A flow, a campaign or "every call" is claimed by one file only: the choice must be clear."""
    problems: list[Problem] = []
    owners: dict[tuple[str, str], RuleSet] = {}
    for rules in rule_sets:
        keys = [("flow", f) for f in rules.flows] + [("campaign", c) for c in rules.campaigns]
        if not keys:
            keys = [("any", "")]
        for key in keys:
            first = owners.setdefault(key, rules)
            if first is not rules:
                what = "every call" if key[0] == "any" else f"{key[0]} '{key[1]}'"
                problems.append(
                    Problem(
                        rules.file,
                        rules.line,
                        rules.col,
                        f"qa.applies_to: {what} is already claimed by {first.file}:"
                        f"{first.line}:{first.col} ({first.name})",
                    )
                )
    return problems
