"""A bill payment keyed into the hotline from a real softphone leaves no card digits behind.

Issue 12. A known customer calls ``flows/library/hotline.yaml`` from baresip and pays a bill by
keys only (RFC 2833): 3 (pay a bill) at the main menu, 25# for the amount, 1 to confirm it,
the card number 4111111111111111 and the expiry 1229 (both keyed while the recording is paused),
then 2 (nothing else) and the IVR says goodbye and hangs up. Every event serve publishes to
MQTT during the call is collected. Then the card number, the expiry and the customer's PIN
must appear nowhere: not in the sidecar, nor any other file under the data dir (WAV, manifests,
signing keys, TTS cache, whatever is there) or its name, nor ``recordings show`` (text and
JSON), nor serve's log, nor any MQTT payload. The card's last four digits may appear in exactly
one place, where the flow declares them: ``card_last4`` of the ``payment_requested`` flow event.

The hotline's opening hours are London office hours, so the call runs against a copy of
hotline.yaml whose only change is a ``contact_center`` calendar open at every hour of every day;
the rest of the file (the payment steps) is used as it stands. The customer directory CSV lives
outside the data dir, so the PIN it holds must not turn up under the data dir either.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from recordings.qa_file import qa_path_for, read_qa_file
from supervision.event_catalog import load_schema
from tests.e2e.conftest import ROOT, IvrProcess, list_recordings, run_ivr_cli
from tests.e2e.mqtt_collector import MqttCollector
from tests.e2e.softphone import Softphone, present_number
from tests.e2e.test_e2e_softphone import crash_lines, events, require_baresip, wait_ivr

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(120)]

HOTLINE = ROOT / "flows" / "library" / "hotline.yaml"

CALLER = "+12025550123"  # the From user part baresip presents (a valid number: the directory checks)
PIN = "8264"  # the account's PIN: never asked on the payment path, never to be written anywhere
CARD = "4111111111111111"
LAST4 = CARD[-4:]
EXPIRY = "1229"
AMOUNT_KEYS = "25#"
DIRECTORY = f"phone,tier,pin,balance,card_last4\n{CALLER},standard,{PIN},1520.75,5309\n"

# The keys that are not card data, in the order keyed: menu 3, amount 2 5 #, confirm 1, no more 2.
PLAIN_KEYS = "3" + AMOUNT_KEYS + "1" + "2"
CARD_PROMPT = "Please key in the sixteen digit number on the front of your card."
EXPIRY_PROMPT = "And the expiry date, as four digits, month then year."


def standalone(digits: str) -> re.Pattern[bytes]:
    """``digits`` as a token of its own: not inside a longer number, hex hash, id or decimal.

    Call ids carry the time (``...T001229-...``), hashes are hex and durations have decimals,
    so a bare substring search for four digits would find them by chance.
    """
    return re.compile(rb"(?<![0-9A-Za-z.])" + re.escape(digits.encode()) + rb"(?![0-9A-Za-z])")


# What must never be written: the card number (plain or grouped in fours), the expiry (also as
# MM/YY) and the PIN. The last four alone is checked separately (one allowed place).
FORBIDDEN: dict[str, re.Pattern[bytes]] = {
    "card number": re.compile(rb"4111[ -]?1111[ -]?1111[ -]?1111"),
    "card number's first 12 digits": re.compile(rb"411111111111"),
    "expiry": standalone(EXPIRY),
    "expiry as MM/YY": re.compile(rb"(?<![0-9])12/29(?![0-9])"),
    # How a digits slot is read back ("That's 1 2 2 9"): no step may say the card back.
    "card number read back": re.compile(rb"4 1 1 1 1 1 1 1 1 1 1 1"),
    "expiry read back": re.compile(rb"(?<![0-9] )1 2 2 9(?! [0-9])"),
    "PIN": standalone(PIN),
}
LAST4_PATTERN = standalone(LAST4)


def leaks(data: bytes) -> list[str]:
    """What of :data:`FORBIDDEN` ``data`` holds, each with a little context."""
    found = []
    for what, pattern in FORBIDDEN.items():
        for match in pattern.finditer(data):
            context = data[max(0, match.start() - 60) : match.end() + 60]
            found.append(f"{what} at byte {match.start()}: ...{context!r}...")
    return found


KEY_TURN = re.compile(r"#[0-9*#]")


def keyed_digits(turns: list[dict[str, Any]]) -> str:
    """The keys of a transcript's caller turns that show a key (``#3``), in order."""
    return "".join(t["text"][1:] for t in turns if t["speaker"] == "caller" and KEY_TURN.fullmatch(t["text"]))


def open_all_day_hotline(directory: Path) -> Path:
    """hotline.yaml with the contact center's calendar open around the clock, nothing else changed."""
    text = HOTLINE.read_text(encoding="utf-8")
    calendar = re.compile(
        r"(  contact_center:\n    timezone: [^\n]+\n    hours:\n)(?:      [^\n]+\n)+    holidays: [^\n]+\n"
    )
    patched, replaced = calendar.subn(r'\1      daily: "00:00-24:00"\n    holidays: []\n', text)
    assert replaced == 1, "hotline.yaml's business_hours.contact_center block changed shape; update this test"
    path = directory / "hotline.yaml"
    path.write_text(patched, encoding="utf-8")
    return path


# -- the call ---------------------------------------------------------------------------


@dataclass
class Caller:
    """The softphone's side of one call: answer each question by keys once it is asked."""

    phone: Softphone
    ivr: IvrProcess
    call_id: str = ""

    def prompts(self, step: str) -> int:
        return len(events(self.ivr, "call.prompt", call_id=self.call_id, step=step))

    def answer(self, step: str, keys: str, nth: int = 1, timeout: float = 20.0) -> None:
        """Once the ``nth`` prompt of ``step`` is on the line, key ``keys`` one by one (barging in)."""
        deadline = time.monotonic() + timeout
        while self.prompts(step) < nth:
            assert self.phone.alive(), "baresip died\n" + self.phone.log_tail()
            assert self.ivr.proc.poll() is None, "serve died\n" + "\n".join(self.ivr.lines[-30:])
            assert time.monotonic() < deadline, (
                f"the IVR never asked {step} (prompt #{nth}) within {timeout}s; serve log tail:\n"
                + "\n".join(self.ivr.lines[-30:])
            )
            time.sleep(0.05)
        time.sleep(0.4)  # the prompt is playing: the keys interrupt it, as the flow allows
        for key in keys:
            self.phone.send_digits(key)
            time.sleep(0.15)


def place_payment_call(phone: Softphone, ivr: IvrProcess) -> Caller:
    """Dial the hotline and pay 25 dollars by card, keys only; returns once both ends hung up."""
    since = phone.mark()
    phone.dial(f"sip:hotline@127.0.0.1:{ivr.port}")
    up = phone.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, since=since, timeout=15)
    assert up is not None and up.type == "CALL_ESTABLISHED", f"not answered: {up}\n{phone.log_tail()}"
    offered = wait_ivr(ivr, "call.offered", 10, sip_call_id=up.call_id)
    assert offered is not None, "serve never logged call.offered"
    caller = Caller(phone, ivr, offered["call_id"])

    caller.answer("main_menu", "3")  # pay a bill
    caller.answer("bill_amount", AMOUNT_KEYS)  # 25 dollars
    caller.answer("bill_amount", "1", nth=2)  # "That's 25 dollars. Is that right?" yes
    caller.answer("bill_card_number", CARD)
    caller.answer("bill_card_expiry", EXPIRY)
    caller.answer("anything_else", "2")  # no: goodbye, and the IVR hangs up

    closed = phone.wait_event({"CALL_CLOSED"}, since=since, call_id=up.call_id, timeout=20)
    assert closed is not None, "the IVR never hung up after goodbye\n" + "\n".join(ivr.lines[-30:])
    assert wait_ivr(ivr, "call.ended", 20, call_id=caller.call_id) is not None, "no call.ended"
    return caller


def recordings_show(data_dir: Path, call_id: str, *json_flag: str) -> str:
    return run_ivr_cli(data_dir, "recordings", "show", call_id, *json_flag, timeout=60).stdout


def test_a_keyed_card_payment_leaves_no_card_digits_in_any_artefact(
    start_ivr: Any, mqtt_collector: MqttCollector, tmp_path: Path
) -> None:
    require_baresip()
    flow = open_all_day_hotline(tmp_path)
    directory = tmp_path / "customers.csv"
    directory.write_text(DIRECTORY, encoding="utf-8")
    ivr: IvrProcess = start_ivr(
        flow=flow,
        IVR_DIRECTORY__PATH=str(directory),
        **mqtt_collector.serve_env(),
    )
    phone = Softphone(tmp_path / "softphone")
    phone.start(rtp_start=10000 + 100 * (uuid.uuid4().int % 99))
    try:
        present_number(phone, CALLER)
        caller = place_payment_call(phone, ivr)
    finally:
        phone.stop()
    cid = caller.call_id
    ended_event = mqtt_collector.wait_for(f"/call/{cid}/ended")
    assert ivr.proc.poll() is None and not crash_lines(ivr), "\n".join(crash_lines(ivr) or ivr.lines[-30:])
    assert ivr.stop() == 0, "serve did not exit 0 on SIGTERM:\n" + "\n".join(ivr.lines[-20:])

    # -- the call went the payment way, keyed as planned --------------------------------------
    assert len(events(ivr, "call.dtmf", call_id=cid)) == len(PLAIN_KEYS) + len(CARD) + len(EXPIRY)
    (ended,) = events(ivr, "call.ended", call_id=cid)
    assert ended["outcome"] == "payment_submitted" and ended["hung_up_by"] == "local", ended
    assert json.loads(ended_event.payload)["outcome"] == "payment_submitted", ended_event

    (entry,) = [r for r in list_recordings(ivr.data_dir) if r["call_id"] == cid]
    sidecar_file = Path(entry["sidecar"])
    sidecar = json.loads(sidecar_file.read_bytes())
    assert sidecar["status"] == "complete" and sidecar["outcome"] == "payment_submitted", sidecar
    turns = [(t["speaker"], t["text"]) for t in sidecar["turns"]]
    caller_turns = [text for speaker, text in turns if speaker == "caller"]
    bot_turns = [text for speaker, text in turns if speaker == "bot"]
    assert CARD_PROMPT in bot_turns and EXPIRY_PROMPT in bot_turns, bot_turns
    assert "[redacted: 16 digits]" in caller_turns and "[redacted: 4 digits]" in caller_turns, turns
    # Keys outside the card steps are transcribed one by one (#3 ...): exactly the plain ones, so
    # no card or expiry digit reached the transcript as a keyed sequence.
    assert keyed_digits(sidecar["turns"]) == PLAIN_KEYS, caller_turns
    assert [t for t in caller_turns if not KEY_TURN.fullmatch(t)] == [
        "[redacted: 16 digits]",
        "[redacted: 4 digits]",
    ], caller_turns
    # The recording was paused from the card question until the payment was submitted.
    card_turn = next(t for t in sidecar["turns"] if t["text"] == "[redacted: 16 digits]")
    expiry_turn = next(t for t in sidecar["turns"] if t["text"] == "[redacted: 4 digits]")
    assert any(
        p["start_s"] <= card_turn["start_s"] and p["end_s"] is not None and p["end_s"] >= expiry_turn["end_s"]
        for p in sidecar["pauses"]
    ), (sidecar["pauses"], card_turn, expiry_turn)

    # -- MQTT: the last four only as the flow's card_last4, nothing else of the card ---------
    messages = mqtt_collector.snapshot()
    print(f"payment call {cid}: " + " | ".join(f"{speaker}: {text}" for speaker, text in turns))
    print("MQTT: " + "; ".join(f"{m.topic} {m.payload.decode(errors='replace')}" for m in messages))
    assert f"/call/{cid}/connected" in " ".join(m.topic for m in messages), [m.topic for m in messages]
    payments = [
        m
        for m in messages
        if m.topic.endswith(f"/call/{cid}/flow_event")
        and json.loads(m.payload).get("name") == "payment_requested"
    ]
    assert len(payments) == 1, [(m.topic, m.payload) for m in messages]
    payment = json.loads(payments[0].payload)
    assert payment["card_last4"] == LAST4 and payment["amount"] == "25.00", payment
    # The call's QA verdict (flows/library/qa/hotline.yaml), published before ended, is its .qa.json's.
    topics = [m.topic for m in messages]
    (verdict_message,) = [m for m in messages if m.topic.endswith(f"/call/{cid}/qa")]
    assert topics.index(verdict_message.topic) < topics.index(ended_event.topic), topics
    verdict = json.loads(verdict_message.payload)
    jsonschema.validate(verdict, load_schema("call_qa"))
    qa_file = read_qa_file(qa_path_for(sidecar_file))
    assert (verdict["status"], verdict["score"], verdict["rules"]["name"]) == (
        qa_file["status"],
        qa_file["score"],
        "hotline",
    ), verdict
    failed_in_file = [r["rule"] for r in qa_file["results"] if r["status"] == "fail"]
    assert [f["rule"] for f in verdict["failed"]] == failed_in_file, verdict
    problems: list[str] = []
    for message in messages:
        where = f"MQTT {message.topic}"
        problems += [f"{where}: {leak}" for leak in leaks(message.topic.encode() + b" " + message.payload)]
        body = json.loads(message.payload)
        if message is payments[0]:
            body = {k: v for k, v in body.items() if k != "card_last4"}
        if LAST4_PATTERN.search(json.dumps(body).encode() + message.topic.encode()):
            problems.append(f"{where}: the card's last four outside payment_requested.card_last4: {body}")

    # -- serve's log, recordings show (text and JSON), every file under the data dir ----------
    for number, line in enumerate(ivr.lines, 1):
        problems += [f"serve log line {number}: {leak}" for leak in leaks(line.encode())]
        if LAST4_PATTERN.search(line.encode()):
            problems.append(f"serve log line {number}: the card's last four: {line.rstrip()}")
    for flag in ((), ("--json",)):
        shown = recordings_show(ivr.data_dir, cid, *flag).encode()
        assert b"[redacted: 16 digits]" in shown, shown
        if flag:
            assert keyed_digits(json.loads(shown)["turns"]) == PLAIN_KEYS, shown
        what = f"recordings show {cid} {' '.join(flag)}".rstrip()
        problems += [f"{what}: {leak}" for leak in leaks(shown)]
        if LAST4_PATTERN.search(shown):
            problems.append(f"{what}: the card's last four")
    files = sorted(p for p in ivr.data_dir.rglob("*") if p.is_file())
    assert sidecar_file in files and Path(entry["path"]) in files, files
    for path in files:
        data = path.read_bytes()
        name = path.relative_to(ivr.data_dir)
        problems += [f"{name}: {leak}" for leak in leaks(data)]
        problems += [f"the file name {name}: {leak}" for leak in leaks(str(name).encode())]
        if LAST4_PATTERN.search(data):
            problems.append(f"{name}: the card's last four")
    assert not problems, "card data or PIN written where it must not be:\n" + "\n".join(problems)
