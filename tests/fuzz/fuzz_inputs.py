"""Hostile inputs for the fuzz suite: flow YAML, CSV call lists and settings, mutated from
real files by a seeded :class:`random.Random`, so every failing case can be replayed.

Each generator yields ``(name, data)``: ``name`` says which mutations made the case.
"""

from __future__ import annotations

import dataclasses
import random
import re
import typing
from collections.abc import Callable, Iterator
from pathlib import Path

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SLOW_TEMPLATE = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"

# Values dropped into YAML in place of a real one: types, sizes, tags, aliases, templates.
HOSTILE_VALUES = (
    "",
    "~",
    "null",
    "true",
    "[]",
    "{}",
    "[",
    "{",
    "]",
    "'",
    '"',
    "&anchor",
    "*undefined_alias",
    "!!python/object/apply:os.system ['true']",
    "!!binary AAAA",
    "!custom tag",
    "9" * 100_000,
    "-" + "9" * 50,
    "1." + "9" * 500,
    "1e999",
    ".inf",
    "-.inf",
    ".nan",
    "0x" + "f" * 50,
    "0o777",
    "1_2_3",
    "-1",
    "0",
    "99999999999",
    "2026-13-45",
    "2026-02-30",
    "25:99",
    "99999h",
    "-5s",
    "1e308s",
    "a" * 20_000,
    "[" * 3000 + "]" * 3000,
    '"\\0"',
    '"\\u202e"',
    '"\\x1b[31m"',
    "../../../../etc/passwd",
    "/dev/zero",
    "? [a, b]",
    "<<: *a",
    '"{{ \'a\' * 4000000000 }}"',
    '"{{ 10 ** 100000 }}"',
    '"{{ \'%0999999999d\' % 1 }}"',
    '"{{ ().__class__.__mro__ }}"',
    '"{{ lipsum(1000000000) }}"',
    '"{{ contact.note * 100000 }}"',
    '"{{ contact.first_name | center(4000000000) }}"',
    '"{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"',
    '"{{"',
    '"{% if %}"',
    '"{{ undefined_thing.attr }}"',
    "Europe/" + "x" * 400,
    "yes",
    "no",
)
SPECIAL_FLOW_FILES: tuple[tuple[str, bytes], ...] = (
    ("empty", b""),
    ("tilde", b"~\n"),
    ("null", b"null\n"),
    ("comment", b"# nothing\n"),
    ("bom", b"\xef\xbb\xbf"),
    ("two-documents", b"a: 1\n---\nb: 2\n"),
    ("list", b"- a\n- b\n"),
    ("scalar", b"hello\n"),
    ("nul", b"\x00"),
    ("utf16", "flow: {name: x}\n".encode("utf-16")),
    ("latin1", "flow: {name: caf\xe9}\n".encode("latin-1")),
    ("huge", b"a: " + b"x" * 1_100_000),
    ("version-100k-digits", b"flow: {name: x, version: " + b"9" * 100_000 + b"}\nsteps: {a: {hangup: x}}\n"),
    ("deep", b"a: " + b"[" * 50_000 + b"]" * 50_000),
    ("python-tag", b"flow: !!python/object/apply:os.system ['echo pwned']\n"),
    (
        "billion-laughs",
        b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        b"f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nsteps: *g\n",
    ),
)
_KEY_VALUE = re.compile(r"^(\s*(?:- )?[\w/.-]+:\s+)(\S.*)$")
_LIST_ITEM = re.compile(r"^(\s*- )(\S.*)$")


def _value(rng: random.Random) -> str:
    return SLOW_TEMPLATE if rng.random() < 0.01 else rng.choice(HOSTILE_VALUES)


def _swap_value(rng: random.Random, lines: list[str]) -> str:
    candidates = [i for i, line in enumerate(lines) if _KEY_VALUE.match(line) or _LIST_ITEM.match(line)]
    if not candidates:
        return "swap-none"
    i = rng.choice(candidates)
    match = _KEY_VALUE.match(lines[i]) or _LIST_ITEM.match(lines[i])
    assert match is not None
    value = _value(rng)
    lines[i] = match.group(1) + value
    return f"swap@{i + 1}={value[:30]!r}"


def _line_op(rng: random.Random, lines: list[str]) -> str:
    if not lines:
        return "line-none"
    i = rng.randrange(len(lines))
    op = rng.choice(("delete", "duplicate", "swap", "indent", "dedent", "typo"))
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "swap":
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == "indent":
        lines[i] = "  " + lines[i]
    elif op == "dedent":
        lines[i] = lines[i][2:] if lines[i].startswith("  ") else lines[i].lstrip()
    elif lines[i].strip():
        k = rng.randrange(len(lines[i]))
        lines[i] = lines[i][:k] + lines[i][k + 1 :]
    return f"{op}@{i + 1}"


def mutate_text(rng: random.Random, text: str, operations: int) -> tuple[str, bytes]:
    """Apply ``operations`` random edits to ``text``; returns what was done and the bytes."""
    lines = text.splitlines()
    done: list[str] = []
    data: bytes | None = None
    for _ in range(operations):
        roll = rng.random()
        if roll < 0.55:
            done.append(_swap_value(rng, lines))
        elif roll < 0.9:
            done.append(_line_op(rng, lines))
        elif roll < 0.95:
            raw = "\n".join(lines).encode()
            cut = rng.randrange(len(raw) + 1)
            data = raw[:cut] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 4))) + raw[cut:]
            done.append(f"bytes@{cut}")
        else:
            raw = "\n".join(lines).encode()
            cut = rng.randrange(len(raw) + 1)
            data = raw[:cut]
            done.append(f"truncate@{cut}")
        if data is not None:
            return "+".join(done), data
    return "+".join(done), ("\n".join(lines) + "\n").encode()


# Prompts that validate (they read declared or built-in names) but may pass a limit at run
# time with hostile contact data or a long utterance.
RUNTIME_TEMPLATES = (
    '"Hello {{ contact.first_name }}."',
    '"{{ contact.first_name * 100000 }}"',
    '"{{ contact.first_name | center(99999) }}"',
    '"{{ contact.first_name ~ contact.first_name ~ contact.first_name }}"',
    '"{{ contact.first_name | spell }} {{ contact.first_name | money }}"',
    '"{{ contact.first_name | spoken_date }} {{ contact.first_name | spoken_time }}"',
    '"{{ heard * 3000 }}"',
    '"{{ heard | replace(\"x\", heard) }}"',
    '"{% for c in heard %}{% for d in heard %}.{% endfor %}{% endfor %}"',
    '"{{ reference_code(heard, 999999999) }}"',
)
FLOW_FOLDERS = ("flows/library", "tests/flows/broken")
FlowCase = tuple[str, bytes]
_PROMPT = re.compile(r"^(\s*(?:- )?(?:say|ask|help|failure_prompt):\s+)(\S.*)$")


def _swap_prompt(rng: random.Random, lines: list[str]) -> str:
    candidates = [i for i, line in enumerate(lines) if _PROMPT.match(line)]
    if not candidates:
        return "prompt-none"
    i = rng.choice(candidates)
    match = _PROMPT.match(lines[i])
    assert match is not None
    lines[i] = match.group(1) + rng.choice(RUNTIME_TEMPLATES)
    return f"prompt@{i + 1}"


def flow_cases(rng: random.Random, count: int) -> Iterator[tuple[str, FlowCase]]:
    """The special files, then ``count`` mutations of the shipped and broken flows.

    A case is the folder (relative to the project) it belongs in, so its subflows resolve,
    and its bytes. About a third only swap prompts, so the flow stays valid and a session
    runs it.
    """
    for name, data in SPECIAL_FLOW_FILES:
        yield name, ("", data)
    texts = [
        (folder, path.stem, path.read_text(encoding="utf-8"))
        for folder in FLOW_FOLDERS
        for path in sorted((ROOT / folder).glob("*.yaml"))
    ]
    library = [entry for entry in texts if entry[0] == FLOW_FOLDERS[0]]
    for n in range(count):
        if rng.random() < 0.35:
            folder, stem, text = rng.choice(library)
            lines = text.splitlines()
            what = "+".join(_swap_prompt(rng, lines) for _ in range(rng.randint(0, 2)))
            yield f"{n}:{stem}:{what or 'as-shipped'}", (folder, ("\n".join(lines) + "\n").encode())
            continue
        folder, stem, text = rng.choice(texts)
        what, data = mutate_text(rng, text, rng.randint(1, 3))
        yield f"{n}:{stem}:{what}", (folder, data)


CSV_HEADER = ["phone", "first_name", "last_name", "timezone", "cooling_off_end", "priority", "product"]
HOSTILE_CELLS = (
    "",
    " ",
    "\x00",
    "Li\x00",
    "\x1b[2J",
    "a\rb",
    "tab\tinside",
    "\x7f",
    "\u0085",
    "\u202e",
    "=cmd|'/C calc'!A0",
    '"',
    '""',
    ",",
    "9" * 5000,
    "-" + "9" * 30,
    "1e400",
    "x" * 3000,
    "+" + "8" * 40,
    "00000000000000000000",
    "Europe/" + "x" * 400,
    "Not/AZone",
    "9999-12-31T23:59:59+00:00",
    "0001-01-01T00:00:00+14:00",
    "2025-02-30T10:00:00",
    "２０２５",
    "١٢٣٤٥٦٧٨٩",
    "13812345678",
)


def _cell(rng: random.Random) -> str:
    return rng.choice(HOSTILE_CELLS)


def _quote(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if any(ch in cell for ch in ',"\n\r') else cell


def csv_cases(rng: random.Random, count: int) -> Iterator[tuple[str, bytes]]:
    """Call lists: a valid base, then cells, rows, the header and the bytes mutated."""
    base = [
        [f"1381234{n:04d}", "Li", "Wei", "", f"2025-03-01T{8 + n % 10:02d}:00:00+08:00", str(n % 3), "Fund A"]
        for n in range(12)
    ]
    yield "empty", b""
    yield "header-only", (",".join(CSV_HEADER) + "\n").encode()
    yield "bom", ("\ufeff" + ",".join(CSV_HEADER) + "\n" + ",".join(base[0]) + "\n").encode()
    yield "field-over-csv-limit", (",".join(CSV_HEADER) + "\n" + "x" * 200_000 + ",,,,,,\n").encode()
    edits: dict[str, Callable[[list[list[str]]], str]] = {
        "cell": lambda rows: _set_cell(rng, rows),
        "ragged": lambda rows: _ragged(rng, rows),
        "header": lambda rows: _header(rng, rows),
    }
    for n in range(count):
        rows = [list(CSV_HEADER), *(list(row) for row in base)]
        kinds = rng.choices(("cell", "ragged", "header"), weights=(12, 1, 1), k=rng.randint(1, 4))
        done = [edits[kind](rows) for kind in kinds]
        ending = rng.choice(("\n", "\r\n", "\r"))
        data = (ending.join(",".join(_quote(c) for c in row) for row in rows) + ending).encode()
        if rng.random() < 0.1:
            cut = rng.randrange(len(data) + 1)
            data = data[:cut] + bytes([rng.randrange(256)]) + data[cut:]
            done.append(f"byte@{cut}")
        yield f"{n}:{'+'.join(done)}", data


def _set_cell(rng: random.Random, rows: list[list[str]]) -> str:
    r = rng.randrange(1, len(rows))
    c = rng.randrange(len(rows[r]))
    rows[r][c] = _cell(rng)
    return f"cell[{r},{c}]={rows[r][c][:20]!r}"


def _ragged(rng: random.Random, rows: list[list[str]]) -> str:
    r = rng.randrange(1, len(rows))
    if rows[r] and rng.random() < 0.5:
        rows[r].pop()
        return f"short-row[{r}]"
    rows[r].append(_cell(rng))
    return f"long-row[{r}]"


def _header(rng: random.Random, rows: list[list[str]]) -> str:
    c = rng.randrange(len(rows[0]))
    rows[0][c] = rng.choice(("", "phone", "first_name", "x\x00", "Phone ", _cell(rng)))
    return f"header[{c}]={rows[0][c][:20]!r}"


SETTING_VALUES = (
    "",
    " ",
    "0",
    "-1",
    "1.5",
    "true",
    "maybe",
    "9" * 5000,
    "1e999",
    ".inf",
    ".nan",
    "[",
    "{a: [}",
    "- a\n- b",
    "[udp, tcp, sctp]",
    "{cards: sip:x@y, vip: ''}",
    "!!python/object/apply:os.system ['true']",
    "*alias",
    "&a [*a]",
    "\x00",
    "\x1b[31m",
    "x" * 20_000,
    "notadb://x",
    "postgresql+nodriver://u:pw@h/db",
    "sqlite:///" + "x" * 300,
    "s3cret: #not yaml",
    "10.0.0.0/33",
    "::1/129",
)


def setting_keys() -> list[tuple[str, ...]]:
    """Every settings key as a path, e.g. ``("sip", "port")``."""
    keys: list[tuple[str, ...]] = []

    def walk(cls: type, prefix: tuple[str, ...]) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], (*prefix, f.name))
            else:
                keys.append((*prefix, f.name))

    walk(Settings, ())
    return keys


SettingsCase = tuple[dict[str, str], bytes | None]


def settings_cases(rng: random.Random, count: int) -> Iterator[tuple[str, SettingsCase]]:
    """Environments (known keys, near misses, garbage names) and mutated config files."""
    keys = setting_keys()
    shipped = (ROOT / "config" / "ivr.yaml").read_text(encoding="utf-8")
    for n in range(count):
        env: dict[str, str] = {}
        for _ in range(rng.randint(1, 4)):
            key = rng.choice(keys)
            roll = rng.random()
            name = "IVR_" + "__".join(key).upper()
            if roll < 0.1:
                name = name[:-1]
            elif roll < 0.15:
                name = "IVR_" + "__".join(key[:1]).upper()
            elif roll < 0.2:
                name += "__EXTRA"
            env[name] = rng.choice(SETTING_VALUES)
        config: bytes | None = None
        what = ""
        if rng.random() < 0.4:
            what, config = mutate_text(rng, shipped, rng.randint(1, 3))
        yield f"{n}:{sorted(env)}:{what}", (env, config)
