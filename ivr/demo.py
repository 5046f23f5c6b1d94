"""``demo``: the first thing a newcomer runs.

Starts the IVR on loopback, places a real SIP call to it with ``sipp`` whose caller says one
sentence (espeak-ng, streamed as G.711 RTP), and prints what the bot said and heard, turn by
turn, with the path of the stereo recording. Needs no network and no model download.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import tempfile
from pathlib import Path

from config.settings import Settings
from ivr.call_services import CallServices
from ivr.server import IvrServer
from ivr.sipp_peer import SCENARIO_DIR, free_port, run_sipp, sipp_command, synthesize_caller_audio
from recordings.sidecar import read_sidecar, sidecar_path

# The caller waits for the greeting and the question before speaking (barge-in would cut them),
# and keeps its line open (silence, as a real phone sends) until the bot hangs up.
_CALLER_WAITS_S = 7.0
_CALLER_STAYS_S = 20.0


async def run_demo(settings: Settings, say: str) -> int:
    port = free_port()
    sip = dataclasses.replace(settings.sip, bind_address="127.0.0.1", port=port, max_concurrent_calls=4)
    settings = dataclasses.replace(settings, sip=sip)
    print(f"Loading the flow, the speech recognizer and the prompts ({settings.flow_path.name}) ...")
    services = await asyncio.to_thread(CallServices.load, settings)
    services.start()
    server = IvrServer(settings, services)
    serving = asyncio.create_task(server.run(), name="demo-serve")
    try:
        await asyncio.wait_for(server.ready.wait(), 30)
        print(
            f"IVR listening on sip:127.0.0.1:{port}; placing a call with sipp. The caller will say: {say!r}"
        )
        with tempfile.TemporaryDirectory(prefix="ivr-demo-") as tmp:
            workdir = Path(tmp)
            await asyncio.to_thread(
                synthesize_caller_audio,
                say,
                workdir / "caller.wav",
                lead_s=_CALLER_WAITS_S,
                tail_s=_CALLER_STAYS_S,
            )
            cmd = sipp_command(
                SCENARIO_DIR / "demo_caller.xml", f"127.0.0.1:{port}", local_port=free_port(), timeout_s=60
            )
            result = await run_sipp(cmd, workdir, timeout_s=90)
    finally:
        server.request_stop()
        await serving
        await services.aclose()
    if not result.ok:
        print(
            f"sipp reported a failed call (exit {result.returncode}):\n{result.errors or result.stderr}",
            file=sys.stderr,
        )
        return 1
    if not server.stats.recordings:
        print("The call completed but no recording was made.", file=sys.stderr)
        return 1
    wav = Path(server.stats.recordings[-1])
    sidecar = read_sidecar(sidecar_path(wav.parent, wav.stem))
    print()
    print("Transcript (seconds from answer):")
    for turn in sidecar.turns:
        who = "bot   " if turn.speaker == "bot" else "caller"
        confidence = (
            f"  (confidence {turn.confidence:.2f})"
            if turn.confidence is not None and turn.speaker != "bot"
            else ""
        )
        print(f"  {turn.start_s:6.2f}  {who}  {turn.text}{confidence}")
    print()
    print(f"Outcome: {sidecar.outcome or 'none'}")
    print(f"Stereo recording (left = caller, right = bot): {wav}")
    print(f"Duration {sidecar.duration_s:.2f} s, SHA-256 {sidecar.sha256}")
    return 0
