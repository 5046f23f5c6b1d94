"""One prompt, one process: ``python -m media.tts_worker``, then one request line on stdin.

The request is JSON ``{"voice": ..., "rate": ..., "path": ..., "text": ...}``. The process
starts (and imports pyttsx3) before it is needed, waits for its one request, renders it and
exits, so the caller keeps a spare worker ready and a render costs only the synthesis.

pyttsx3 2.99's espeak driver misbehaves when used through its event loop: rate and voice of
one utterance can leak into the next, and ``runAndWait`` may return before the (threaded)
synthesis has written the file. So each prompt gets a fresh interpreter, and the driver is
driven synchronously: set voice and rate on the driver, start synthesis, and wait for
espeak-ng to finish (``espeak_Synchronize``), which writes the WAV.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pyttsx3
from pyttsx3.drivers import _espeak


def main() -> int:
    with contextlib.redirect_stdout(io.StringIO()):  # the driver prints "Audio saved to ..."
        engine = pyttsx3.init("espeak")
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the parent did not need this spare
    request = json.loads(line)
    path, text = str(request["path"]), str(request["text"])
    with contextlib.redirect_stdout(io.StringIO()):
        driver = engine.proxy._driver
        driver.setProperty("voice", str(request["voice"]))  # raises for a voice espeak-ng lacks
        driver.setProperty("rate", int(request["rate"]))  # after the voice: a voice resets the rate
        driver.save_to_file(text, path)
        driver._start_synthesis(text)
        _espeak.Synchronize()
    if not Path(path).exists():
        print(f"pyttsx3 wrote no audio for a {len(text)}-character prompt", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
