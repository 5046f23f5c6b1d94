"""The capacity bench's Markdown: one table per part, and the generated blocks it keeps in the
``capacity`` section of docs/benchmarks.md."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from bench.capacity_parts import CapacityResult, ChurnResult, FloodResult
from bench.capacity_rtp import GAP_LIMIT_MS
from bench.capacity_serve import ROOT
from bench.capacity_sipp import Step

DOCS = ROOT / "docs" / "benchmarks.md"
TITLE = "## Call capacity, churn and INVITE flood over real SIP (capacity)"
# What the engine runs from: changes here change the figures.
ENGINE_PATHS = ("ivr", "media", "config", "flows", "recordings", "run_ivr.py", "third_party/pjproject")

R = TypeVar("R")


@dataclass(frozen=True)
class Column(Generic[R]):
    title: str
    cell: Callable[[R], object]
    numeric: bool = True  # right-aligned


def markdown_table(columns: Sequence[Column[R]], rows: Iterable[R]) -> str:
    lines = [
        "| " + " | ".join(c.title for c in columns) + " |",
        "| " + " | ".join("---:" if c.numeric else "---" for c in columns) + " |",
    ]
    lines += ["| " + " | ".join(str(c.cell(r)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _cpu(step: Step) -> str:
    return f"{step.cpu_pct:.0f} % / {step.tree_cpu_pct:.0f} %"


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def capacity_table(results: list[CapacityResult]) -> str:
    C = Column[CapacityResult]
    return markdown_table(
        [
            C("concurrent calls", lambda r: r.calls),
            C("failed (sipp)", lambda r: r.step.sipp.failed(r.calls)),
            C("no complete recording", lambda r: r.calls - r.outcomes.complete),
            C("intent right", lambda r: f"{r.outcomes.understood}/{r.calls}"),
            C(
                "caller speech recorded, median / min",
                lambda r: f"{r.outcomes.speech_kept_median:.0f} % / {r.outcomes.speech_kept_min:.0f} %",
            ),
            C(
                "reply after speech, median / max",
                lambda r: f"{r.outcomes.reply_ms[0] / 1000:.1f} s / {r.outcomes.reply_ms[1] / 1000:.1f} s",
            ),
            C("CPU serve / all processes", lambda r: _cpu(r.step)),
            C(
                "peak RSS serve (idle) / all",
                lambda r: f"{r.rss_peak_mib:.0f} MiB ({r.rss_start_mib:.0f}) / {r.tree_rss_peak_mib:.0f} MiB",
            ),
            C("RTP streams", lambda r: r.gaps.streams),
            C("max gap", lambda r: f"{r.gaps.max_ms:.1f} ms"),
            C("p99 gap", lambda r: f"{r.gaps.p99_ms:.1f} ms"),
            C(
                f"gaps > {GAP_LIMIT_MS:g} ms (streams)",
                lambda r: f"{r.gaps.over_limit} ({r.gaps.streams_over_limit})",
            ),
            C("sipp stalls", lambda r: r.step.sipp.stalls),
            C("media port", lambda r: r.media_port, numeric=False),
            C("load avg", lambda r: r.step.load, numeric=False),
        ],
        results,
    )


def churn_table(result: ChurnResult) -> str:
    C = Column[ChurnResult]
    return markdown_table(
        [
            C("short calls", lambda r: r.calls),
            C("asked rate", lambda r: f"{r.rate:g}/s"),
            C("at once", lambda r: r.concurrent),
            C("completed (sipp)", lambda r: r.step.sipp.ok),
            C("failed (sipp)", lambda r: r.step.sipp.failed(r.calls)),
            C("answered", lambda r: r.answered),
            C("released", lambda r: r.released),
            C("leaked lines", lambda r: r.leaked),
            C("refused", lambda r: r.refused),
            C("complete recordings", lambda r: r.complete_recordings),
            C("calls/s achieved", lambda r: f"{r.calls_per_s:.1f}"),
            C("INVITE -> 200 mean", lambda r: f"{r.step.sipp.mean_ms('ResponseTime1(C)'):.0f} ms"),
            C("call length mean", lambda r: f"{r.step.sipp.mean_ms('CallLength(C)'):.0f} ms"),
            C("CPU serve / all processes", lambda r: _cpu(r.step)),
            C("sipp stalls", lambda r: r.step.sipp.stalls),
            C("survived (OPTIONS answered)", lambda r: _yes(r.survived), numeric=False),
            C("exit on SIGTERM", lambda r: r.exit_status, numeric=False),
            C("load avg", lambda r: r.step.load, numeric=False),
        ],
        [result],
    )


def _finals_with(code: int) -> Callable[[FloodResult], int]:
    return lambda r: r.finals[code]


def flood_table(results: list[FloodResult]) -> str:
    C = Column[FloodResult]
    codes = sorted({code for r in results for code in r.finals})
    return markdown_table(
        [
            C("admission settings", lambda r: f"{r.label}: {r.admission}", numeric=False),
            C("INVITEs sent", lambda r: r.invites),
            C("at", lambda r: f"{r.rate:g}/s"),
            *(C(str(code), _finals_with(code)) for code in codes),
            C("no final response", lambda r: r.no_final),
            C("503 without Retry-After", lambda r: r.no_retry_after),
            C("answered calls released", lambda r: f"{r.released}/{r.answered}"),
            C("survived (OPTIONS answered)", lambda r: _yes(r.survived), numeric=False),
            C("exit on SIGTERM", lambda r: r.exit_status, numeric=False),
            C("load avg", lambda r: r.step.load, numeric=False),
        ],
        results,
    )


def code_state() -> str:
    """The commit measured, and which files the engine runs from differ from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.rstrip("\n")

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = git("status", "--porcelain", "--", *ENGINE_PATHS).splitlines()
    if not changed:
        return f"commit {head}"
    folders = sorted({line[3:].split("/")[0] + ("/" if "/" in line[3:] else "") for line in changed})
    return f"commit {head} plus uncommitted changes to {len(changed)} files in {', '.join(folders)}"


def write_generated_block(name: str, title: str, block: str, tag: str) -> None:
    """Put ``block`` between section ``name``'s generated markers for ``tag`` (the command's
    options: one pair per way of running a bench), adding them at the end of the section, and
    the section (with ``title``) at the end of docs/benchmarks.md, when missing. The prose
    around the markers is left alone."""
    section = f"<!-- section: {name} -->"
    tag = re.sub(r"-{2,}", "", tag).strip() or "default"  # "--" may not appear in an HTML comment
    begin, end = f"<!-- {name}:generated:begin {tag} -->", f"<!-- {name}:generated:end {tag} -->"
    text = DOCS.read_text()
    generated = f"{begin}\n{block.strip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _old, tail = rest.split(end, 1)
        text = head + generated + tail
    elif section in text:
        head, rest = text.split(section, 1)
        after = rest.find("<!-- section:")
        body, tail = (rest, "") if after < 0 else (rest[:after], rest[after:])
        text = head + section + body.rstrip("\n") + "\n\n" + generated + "\n" + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + f"\n\n{section}\n{title}\n\n{generated}\n"
    DOCS.write_text(text)


def update_docs(block: str, tag: str) -> None:
    """The capacity section's generated block for ``tag``."""
    write_generated_block("capacity", TITLE, block, tag)
