"""``outcome_consistent``: the outcome a call ended with agrees with what happened in it.

An outcome (``confirmed``, ``wrong_person``) is set by the flow; this rule checks it against the
verdicts of the rules it ``requires`` (judged first) and against what the caller said.
"""

from __future__ import annotations

from recordings.qa_context import Context, Verdict
from recordings.qa_prompt_rules import caller_says
from recordings.qa_rules import OutcomeConsistent
from recordings.qa_transcript import Span


def outcome_consistent(context: Context, check: OutcomeConsistent) -> Verdict:
    call = context.call
    if call.outcome not in check.outcomes:
        return Verdict("not_applicable", f"outcome is {call.outcome or 'none'!r}")
    problems: list[str] = []
    spans: list[Span] = []
    unknown: list[str] = []
    for name in check.requires:
        verdict = context.verdicts.get(name)
        if verdict is None or verdict.status == "not_evaluable":
            unknown.append(f"rule {name!r} could not be evaluated")
        elif verdict.status == "fail":
            problems.append(f"requires {name}, which failed ({verdict.detail})")
            spans += verdict.spans
        elif verdict.status == "not_applicable":
            problems.append(f"requires {name}, which did not apply ({verdict.detail})")
    if check.caller_says is not None:
        said = caller_says(context, check.caller_says, missing_anchor="fail")
        if said.status == "fail":
            problems.append(said.detail)
            spans += said.spans
        elif said.status == "not_evaluable":
            unknown.append(said.detail)
        else:
            spans += said.spans
    outcome = f"outcome {call.outcome!r}"
    if problems:
        return Verdict("fail", f"{outcome}, but " + "; ".join(problems), spans)
    if unknown:
        return Verdict("not_evaluable", f"{outcome}: " + "; ".join(unknown))
    return Verdict("pass", f"{outcome} is consistent with the call", spans)
