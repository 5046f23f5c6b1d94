"""Compliance callbacks placed by ``run_ivr.py dial`` to a real ``sipp`` callee, then judged by
their QA rules: the callee who talks over the risk disclosure is found by ``recordings search
--qa fail`` with the failing rule and its times; the callee who lets it play and says yes passes.

The disclosure may not be barged into: it plays on over the callee. ``recordings qa
--retranscribe`` decodes the callee's track again from the recording, through the speech
pool's low-priority lane, so the talk-over shows even where the live call did not transcribe
it. To keep CI time low the flow is the shipped compliance callback started at its disclosure
(identity checks are covered by test_e2e_dialer.py), and both callees are called at once.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ivr.sipp_peer import synthesize_caller_audio
from tests.e2e.campaign_runs import callback_list, dial, start_callbacks
from tests.e2e.conftest import ROOT, sipp_uas
from tests.e2e.test_e2e_auditing import as_json, auditor

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FLOWS = ROOT / "flows" / "library"
BARGER = "+12025550144"
LISTENER = "+12025550143"
# Seconds after the callee answers (the flow starts reading the disclosure about 1.5 s in):
TALK_OVER_AT = 12.0  # into the disclosure's second segment
YES_AT = 41.0  # after the acknowledgement question "Do you confirm that you have heard ...?"

# A callee that streams barger.wav when called as BARGER and listener.wav otherwise.
SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="two callees">
  <recv request="INVITE">
    <action><ereg regexp="NUMBER" search_in="hdr" header="To:" check_it="false" assign_to="barger"/></action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=callee 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [rtpstream_audio_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <nop next="barge" test="barger"/>
  <nop next="wait"><action><exec rtp_stream="listener.wav,1,0"/></action></nop>
  <label id="barge"/>
  <nop><action><exec rtp_stream="barger.wav,1,0"/></action></nop>
  <label id="wait"/>
  <recv request="BYE" timeout="120000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <timewait milliseconds="500"/>
</scenario>
""".replace("NUMBER", BARGER.removeprefix("+"))


def callee_audio(workdir: Path, name: str, lines: list[tuple[float, str]]) -> None:
    """``name``.wav (8 kHz mu-law): each line spoken starting ``at`` seconds in."""
    parts: list[str] = []
    for n, (at, text) in enumerate(lines):
        clip = synthesize_caller_audio(text, workdir / f"{name}-{n}.wav", lead_s=at, tail_s=0.0)
        parts += ["-v", "1", str(clip)]
    subprocess.run(
        ["sox", "-m", *parts, "-e", "u-law", str(workdir / f"{name}.wav"), "pad", "0", "30"], check=True
    )


def disclosure_flow(tmp_path: Path) -> Path:
    """The shipped compliance callback, started at its risk disclosure (same name, same rules):
    the identity and purchase steps before it are left out (a flow may not hold unreachable steps)."""
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS / "shared", folder / "shared")
    text = (FLOWS / "compliance_callback.yaml").read_text()
    before, _, rest = text.partition("\n  intro:\n")  # the steps before the disclosure go
    _, _, after = rest.partition("\n  disclosure:\n")
    assert after and "  start: intro\n" in before
    path = folder / "compliance_callback.yaml"
    before = re.sub(r"(?m)^negative_outcomes: .*$", "negative_outcomes: [declined]", before)  # the rest went
    path.write_text(before.replace("  start: intro\n", "  start: disclosure\n") + "\n  disclosure:\n" + after)
    return path


def test_a_disclosure_talked_over_fails_qa_and_one_heard_in_full_passes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    calls = callback_list(tmp_path / "calls.csv", [BARGER, LISTENER], "the Acme Credit Fund")
    start_callbacks(data, calls, disclosure_flow(tmp_path), "--max-attempts", "1")
    workdir = tmp_path / "callee"
    workdir.mkdir()
    (workdir / "two_callees.xml").write_text(SCENARIO)
    callee_audio(workdir, "barger", [(0.3, "Hello?"), (TALK_OVER_AT, "Yes yes, go on."), (YES_AT, "Yes.")])
    callee_audio(workdir, "listener", [(0.3, "Hello?"), (YES_AT, "Yes.")])
    peer, port = sipp_uas(str(workdir / "two_callees"), workdir, calls=2)
    dial(data, port)
    assert peer.wait(60) == 0, (workdir / "sipp_errors.log").read_text(errors="replace")

    judged = auditor(data, "qa", "--retranscribe", "--no-progress")
    assert judged.returncode == 1, judged.stdout + judged.stderr  # a call failed
    verdicts = {line.split()[1]: line.split()[0] for line in judged.stdout.splitlines() if " score " in line}
    assert sorted(verdicts.values()) == ["FAIL", "PASS"], judged.stdout
    assert "FAILED disclosure_in_full [critical] @ " in judged.stdout, judged.stdout
    assert "the caller spoke over segment 2" in judged.stdout, judged.stdout
    assert "RE-TRANSCRIBED caller track" in judged.stdout  # e.g. the "Hello?" before the flow started

    (failed,) = as_json(auditor(data, "search", "--qa", "fail", "--json"))
    assert failed["number"].endswith(BARGER[-2:]) and failed["outcome"] == "confirmed", failed
    assert verdicts[failed["call_id"]] == "FAIL" and "disclosure_in_full" in failed["qa"]["failed_rules"]
    (qa_file,) = data.rglob(f"{failed['call_id']}.qa.json")
    (rule,) = [r for r in json.loads(qa_file.read_text())["results"] if r["rule"] == "disclosure_in_full"]
    caller_spans = [span for span in rule["at"] if TALK_OVER_AT - 1 < span["start_s"] < TALK_OVER_AT + 3]
    assert caller_spans, rule  # the talk-over, with its times
