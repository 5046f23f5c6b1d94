"""A long-lived synthesis process: ``python -m media.tts_worker``, one JSON request per line.

Each request is ``{"id": n, "voice": ..., "rate": ..., "path": ..., "text": ...}``; the worker
writes the 22.05 kHz WAV to ``path`` and answers one line ``{"id": n, "ok": true}`` or
``{"id": n, "error": "..."}``. An empty line or end of input ends it. Models and pyttsx3 load
once, so a prompt costs only its synthesis (about 20 ms for a short sentence), not a Python
start-up.

pyttsx3 2.99's espeak driver misbehaves when used through its event loop (``runAndWait`` may
return before the threaded synthesis has written the file), so the driver is driven
synchronously: set voice, then rate (a voice resets the rate), start synthesis and wait for
espeak-ng to finish (``espeak_Synchronize``). Setting both on every request keeps one
prompt's voice and rate out of the next (checked by pitch and length in the tests).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import pyttsx3
from pyttsx3.drivers import _espeak


def _render(driver: Any, request: dict[str, Any]) -> str | None:
    """Synthesize one request; an error message, or None when the WAV was written."""
    path, text = str(request["path"]), str(request["text"])
    with contextlib.redirect_stdout(io.StringIO()):  # the driver prints "Audio saved to ..."
        driver.setProperty("voice", str(request["voice"]))  # raises for a voice espeak-ng lacks
        driver.setProperty("rate", int(request["rate"]))
        driver.save_to_file(text, path)
        driver._start_synthesis(text)
        _espeak.Synchronize()
    if not Path(path).exists():
        return f"pyttsx3 wrote no audio for a {len(text)}-character prompt"
    return None


def serve(requests: TextIO, replies: TextIO) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        engine = pyttsx3.init("espeak")
    driver = engine.proxy._driver
    for line in requests:
        if not line.strip():
            return 0
        ident: object = None
        try:
            request = json.loads(line)
            ident = request.get("id")
            error = _render(driver, request)
        except Exception as exc:  # one bad request fails that request, not the worker
            error = f"{type(exc).__name__}: {exc}"
        reply = {"id": ident, "ok": True} if error is None else {"id": ident, "error": error}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    return 0


def main() -> int:
    # Replies get a private copy of stdout; fd 1 itself goes to /dev/null so nothing the
    # driver or espeak-ng prints can corrupt the reply stream.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    return serve(sys.stdin, replies)


if __name__ == "__main__":
    sys.exit(main())
