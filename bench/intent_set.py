"""The intent evaluation sets: what new callers really say at the demo flow's menu.

Two sets that share no sentence text and no voice (checked by :func:`check_sets`):

* ``tuning`` - the sentences every threshold of the recognizer was chosen on;
* ``heldout`` - new sentences in other espeak-ng voices, rates and noise levels, never looked
  at while tuning: its figures are the honest ones.

Each holds three kinds of sentence, none hand-recorded (espeak-ng, then the same line model as
``bench/eval_set.py``: pauses, 1/f noise at a set SNR, a G.711 µ-law round trip):

* ``listed`` - a phrase exactly as the flow lists it (the easy case);
* ``paraphrase`` - natural phrasing around the key words that is in *no* phrase list of the
  flow, e.g. "I would like to talk to an agent please";
* ``off_menu`` - sentences that mean none of the step's intents (other questions, chit-chat,
  a phrase's first words, a lone "yes"): the right answer is a reprompt.

Run: .venv/bin/python bench/intent_set.py [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.eval_set import LEAD_S, SAMPLE_RATE, speak, write_line_wav_once
from flows.loader import load_flow
from flows.matching import normalize

FLOW = Path(__file__).resolve().parent.parent / "flows" / "library" / "demo.yaml"
STEP = "ask"
Labelled = tuple[tuple[str, str | None], ...]  # (sentence, intent the flow should take; None = reprompt)

TUNING: dict[str, Labelled] = {
    "listed": (
        ("check my balance", "balance"), ("i lost my card", "lost_card"),
        ("opening hours", "opening_hours"), ("agent", "agent"), ("talk to a person", "agent"),
        ("repeat that", "repeat"), ("balance", "balance"), ("lost card", "lost_card"),
        ("block my card", "lost_card"), ("representative", "agent"), ("human", "agent"),
        ("help", "help"), ("bye", "goodbye"), ("pardon", "repeat"), ("come again", "repeat"),
        ("what are your opening hours", "opening_hours"),
    ),
    "paraphrase": (
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
        ("hi I would like to speak to a representative", "agent"),
        ("can I talk to a real person please", "agent"),
        ("I need to speak to someone", "agent"),
        ("could you put me through to an agent", "agent"),
        ("I want to check my balance please", "balance"),
        ("what is my account balance", "balance"),
        ("I'd like my balance please", "balance"),
        ("my card has been stolen", "lost_card"),
        ("I need to report a lost card", "lost_card"),
        ("can you block my card please", "lost_card"),
        ("what are the opening hours", "opening_hours"),
        ("when are you open today", "opening_hours"),
        ("could you tell me your opening hours", "opening_hours"),
        ("can you repeat that", "repeat"),
        ("sorry say that again", "repeat"),
        ("can you help me please", "help"),
        ("I would like some help", "help"),
        ("bye now", "goodbye"),
        ("thanks goodbye", "goodbye"),
    ),
    "off_menu": (
        ("what is the weather like today", None), ("I want to buy a new car", None),
        ("my neighbour has a big dog", None), ("is this the pizza place", None),
        ("the football game starts at eight", None), ("how much is a ticket to Paris", None),
        ("I am calling about the job advert", None), ("my internet is very slow tonight", None),
        ("do you sell garden furniture", None), ("send the parcel to my sister", None),
        ("no", None), ("okay", None), ("maybe", None), ("sure", None), ("hello", None),
        ("thanks", None), ("please", None), ("I would like", None), ("can you", None),
        ("I want", None), ("um well", None), ("yes please", None), ("no not really", None),
        ("where do you live", None), ("what time is it", None), ("I like your music", None),
        ("my car broke down", None), ("can I pay with cash", None), ("I forgot my password", None),
        ("the bus is late again", None), ("who is speaking", None), ("how are you today", None),
        ("good evening", None), ("what was that noise", None),
        ("I have a question about my order", None), ("please call me back later", None),
        ("is anyone there", None), ("wrong number sorry", None),
        ("I'd like to make a complaint", None), ("can you send me a letter", None),
    ),
}  # fmt: skip
HELDOUT: dict[str, Labelled] = {
    "listed": (
        ("account balance", "balance"), ("my card was stolen", "lost_card"),
        ("when are you open", "opening_hours"), ("operator", "agent"),
        ("speak to someone", "agent"), ("say that again", "repeat"),
        ("what are my options", "help"), ("goodbye", "goodbye"),
    ),
    "paraphrase": (
        ("could I talk to a representative please", "agent"),
        ("I want to speak to a human", "agent"),
        ("can I speak to an operator", "agent"),
        ("I'd like to check my account balance", "balance"),
        ("could you check my balance please", "balance"),
        ("I need to block my card", "lost_card"),
        ("I think my card was stolen", "lost_card"),
        ("I lost my card yesterday", "lost_card"),
        ("could you tell me when you are open", "opening_hours"),
        ("what are your opening hours please", "opening_hours"),
        ("can you say that again please", "repeat"),
        ("sorry could you repeat that", "repeat"),
        ("I need some help", "help"),
        ("okay bye bye", "goodbye"),
    ),
    "off_menu": (
        ("is it going to rain tomorrow", None), ("where is the nearest train station", None),
        ("can you recommend a good restaurant", None), ("how old are you", None),
        ("I would like to order a pizza", None), ("can I book a table for two", None),
        ("I need to change my address", None), ("what is your name", None),
        ("hello is anybody there", None), ("yes", None), ("no thank you", None),
        ("hmm let me think", None), ("check my", None), ("I want to", None),
        ("how do I reset my password", None), ("I want to cancel my subscription", None),
        ("do you have any job vacancies", None), ("thank you very much", None),
        ("what day is it today", None), ("the cat is sleeping on the sofa", None),
        ("can you hear me", None), ("I'd like a cup of coffee", None),
        ("good morning", None), ("my electricity bill is too high", None),
        ("where can I park my car", None), ("tell me a joke", None),
    ),
}  # fmt: skip
SETS = {"tuning": TUNING, "heldout": HELDOUT}
# (voice, words per minute, SNR dB) per set: no voice of one set speaks in the other.
VOICES: dict[str, tuple[tuple[str, int, float], ...]] = {
    "tuning": (
        ("en-us", 165, 20.0), ("en-gb", 165, 20.0), ("en-us+f3", 165, 20.0), ("en-us+m3", 165, 20.0),
        ("en-029", 175, 15.0), ("en-us+m7", 150, 25.0),
    ),
    "heldout": (
        ("en-gb-x-rp", 150, 25.0), ("en-us-nyc+f2", 185, 15.0),
        ("en-gb-scotland", 185, 25.0), ("en-gb-x-gbclan+f4", 150, 15.0),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Sentence:
    path: str
    text: str
    kind: str  # listed | paraphrase | off_menu
    expected: str | None
    voice: str
    speech_end_s: float
    split: str = "tuning"  # tuning | heldout


def step_phrases() -> tuple[tuple[str, ...], set[tuple[str, ...]]]:
    """The demo menu's grammar phrases, and every phrase of the flow (normalised)."""
    flow = load_flow(FLOW)
    everywhere = {normalize(p) for listen in flow.listens.values() for p in listen.phrases}
    return flow.listens[STEP].phrases, everywhere


def check_sets() -> None:
    """Paraphrases and off-menu sentences are in no phrase list, listed ones are, and the two
    sets share no sentence and no voice: otherwise the figures prove nothing."""
    _, everywhere = step_phrases()
    problems: list[str] = []
    for split, kinds in SETS.items():
        for kind, sentences in kinds.items():
            for text, _ in sentences:
                if (normalize(text) in everywhere) != (kind == "listed"):
                    problems.append(
                        f"{split}/{kind}: {text!r} {'is not' if kind == 'listed' else 'is'} a flow phrase"
                    )
    texts = [{normalize(t) for kind in kinds.values() for t, _ in kind} for kinds in SETS.values()]
    problems += [f"in both sets: {' '.join(t)!r}" for t in set.intersection(*texts)]
    voices = [{voice for voice, _, _ in VOICES[split]} for split in SETS]
    problems += [f"voice in both sets: {v}" for v in set.intersection(*voices)]
    if problems:
        raise SystemExit("intent_set: " + "; ".join(problems))


def build(out: Path, splits: tuple[str, ...] = ("tuning", "heldout")) -> list[Sentence]:
    """Write the sets under ``out`` (reusing files already there) and return their manifest."""
    check_sets()
    out.mkdir(parents=True, exist_ok=True)
    items: list[Sentence] = []
    for split in splits:
        for kind, sentences in SETS[split].items():
            for text, expected in sentences:
                for voice, rate, snr in VOICES[split]:
                    name = f"intent|{text}|{voice}|{rate}|{snr:g}"
                    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
                    path = out / f"intent-{digest}.wav"
                    speech = speak(text, voice, rate)
                    write_line_wav_once(path, speech, snr, digest)
                    end_s = LEAD_S + speech.size / SAMPLE_RATE
                    items.append(Sentence(str(path), text, kind, expected, voice, end_s, split))
    (out / "manifest-intent.json").write_text(
        json.dumps([asdict(item) for item in items], indent=1), encoding="utf-8"
    )
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/eval-intent"))
    args = parser.parse_args()
    items = build(args.out)
    print(f"{len(items)} sentences under {args.out}: " + ", ".join(
        f"{sum(i.split == s for i in items)} {s}" for s in SETS
    ))  # fmt: skip


if __name__ == "__main__":
    main()
