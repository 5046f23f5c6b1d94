"""The intent evaluation set: what new callers really say at the demo flow's menu.

Three kinds of sentence, none hand-recorded: every one is synthesized by espeak-ng in several
voices and passed through the same line model as ``bench/eval_set.py`` (pauses, 1/f noise at a
set SNR, a G.711 µ-law round trip):

* ``listed`` - a phrase exactly as the flow lists it (the easy case);
* ``paraphrase`` - natural phrasing around the key words that is in *no* phrase list of the
  flow (checked by :func:`check_unlisted`), e.g. "I would like to talk to an agent please";
* ``off_menu`` - sentences that mean none of the step's intents: the right answer is a reprompt.

Run: .venv/bin/python bench/intent_set.py [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.eval_set import LEAD_S, SAMPLE_RATE, line, speak
from flows.loader import load_flow
from flows.matching import normalize

FLOW = Path(__file__).resolve().parent.parent / "flows" / "library" / "demo.yaml"
STEP = "ask"
# (sentence, intent the flow should take; None = reprompt)
LISTED: tuple[tuple[str, str | None], ...] = (
    ("check my balance", "balance"), ("i lost my card", "lost_card"),
    ("opening hours", "opening_hours"), ("agent", "agent"), ("talk to a person", "agent"),
    ("repeat that", "repeat"),
)  # fmt: skip
PARAPHRASES: tuple[tuple[str, str | None], ...] = (
    ("I would like to talk to an agent please", "agent"),
    ("can I speak to someone please", "agent"),
    ("I'd like to talk to a person", "agent"),
    ("I would like to check my balance please", "balance"),
    ("can I check my account balance", "balance"),
    ("I think I lost my card", "lost_card"),
    ("please block my card", "lost_card"),
    ("I want to know your opening hours", "opening_hours"),
    ("could you repeat that please", "repeat"),
    ("I need help please", "help"),
)
OFF_MENU: tuple[tuple[str, str | None], ...] = (
    ("what is the weather like today", None),
    ("I want to buy a new car", None),
    ("my neighbour has a big dog", None),
    ("is this the pizza place", None),
    ("the football game starts at eight", None),
    ("how much is a ticket to Paris", None),
    ("I am calling about the job advert", None),
    ("my internet is very slow tonight", None),
    ("do you sell garden furniture", None),
    ("send the parcel to my sister", None),
)
VOICES = ("en-us", "en-gb", "en-us+f3", "en-us+m3")
RATE = 165
SNR_DB = 20.0


@dataclass(frozen=True)
class Sentence:
    path: str
    text: str
    kind: str  # listed | paraphrase | off_menu
    expected: str | None
    voice: str
    speech_end_s: float


def step_phrases() -> tuple[tuple[str, ...], set[tuple[str, ...]]]:
    """The demo menu's grammar phrases, and every phrase of the flow (normalised)."""
    flow = load_flow(FLOW)
    everywhere = {normalize(p) for listen in flow.listens.values() for p in listen.phrases}
    return flow.listens[STEP].phrases, everywhere


def check_unlisted() -> None:
    """Paraphrases and off-menu sentences must be in no phrase list, or the set proves nothing."""
    _, everywhere = step_phrases()
    listed = [text for text, _ in PARAPHRASES + OFF_MENU if normalize(text) in everywhere]
    if listed:
        raise SystemExit(f"intent_set: these sentences are flow phrases, not paraphrases: {listed}")


def build(out: Path) -> list[Sentence]:
    """Write the set under ``out`` (reusing files already there) and return its manifest."""
    check_unlisted()
    out.mkdir(parents=True, exist_ok=True)
    kinds = (("listed", LISTED), ("paraphrase", PARAPHRASES), ("off_menu", OFF_MENU))
    items: list[Sentence] = []
    for kind, sentences in kinds:
        for text, expected in sentences:
            for voice in VOICES:
                name = f"intent|{text}|{voice}|{RATE}|{SNR_DB:g}"
                digest = hashlib.sha256(name.encode()).hexdigest()[:16]
                path = out / f"intent-{digest}.wav"
                speech = speak(text, voice, RATE)
                if not path.exists():
                    audio = line(speech, SNR_DB, int(digest[:8], 16))
                    tmp = path.with_suffix(".tmp")
                    with wave.open(str(tmp), "wb") as wav:
                        wav.setnchannels(1)
                        wav.setsampwidth(2)
                        wav.setframerate(SAMPLE_RATE)
                        wav.writeframes(audio.tobytes())
                    tmp.replace(path)
                end_s = LEAD_S + speech.size / SAMPLE_RATE
                items.append(Sentence(str(path), text, kind, expected, voice, end_s))
    (out / "manifest-intent.json").write_text(
        json.dumps([asdict(item) for item in items], indent=1), encoding="utf-8"
    )
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/eval-intent"))
    args = parser.parse_args()
    print(f"{len(build(args.out))} sentences under {args.out}")


if __name__ == "__main__":
    main()
