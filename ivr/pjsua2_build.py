"""Which pjsua2 build this process runs, and how many calls one Endpoint can hold with it.

``scripts/setup.sh`` builds pjsua2 from the vendored pjproject (``third_party/pjproject``) with
``PJSUA_MAX_CALLS`` from its ``config_site.h`` and an epoll ioqueue. The PyPI wheel
``pjsua2-python`` is only an explicit fallback (``PJSUA2_SOURCE=pypi``): pjproject's defaults of
4 calls and a 64-socket select() ioqueue, which aborts the process on a burst of INVITEs.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from config.logs import log_event

_log = logging.getLogger("ivr.sip")
_CONFIG_SITE = Path(__file__).resolve().parent.parent / "third_party" / "pjproject" / "config_site.h"
PYPI_MAX_CALLS = 4
"""``PJSUA_MAX_CALLS`` of every pjsua2 wheel on PyPI (pjproject's default)."""


@dataclass(frozen=True)
class Pjsua2Build:
    name: str
    version: str
    max_calls: int
    vendored: bool


def vendored_max_calls(config_site: Path = _CONFIG_SITE) -> int:
    """``PJSUA_MAX_CALLS`` as the vendored build's config_site.h sets it."""
    try:
        match = re.search(r"^#define\s+PJSUA_MAX_CALLS\s+(\d+)", config_site.read_text(), re.MULTILINE)
    except OSError:
        match = None
    return int(match.group(1)) if match else PYPI_MAX_CALLS


@cache
def installed_build() -> Pjsua2Build:
    """The build in this environment; warns loudly once when it is the 4-call PyPI wheel."""
    try:
        version = metadata.version("pjsua2")
    except metadata.PackageNotFoundError:
        pass
    else:
        return Pjsua2Build("vendored", version, vendored_max_calls(), vendored=True)
    try:
        version = metadata.version("pjsua2-python")
    except metadata.PackageNotFoundError:
        version = "unknown"
    log_event(
        "sip.pypi_pjsua2",
        logging.WARNING,
        _log,
        version=version,
        max_calls=PYPI_MAX_CALLS,
        hint="the PyPI pjsua2 wheel holds 4 calls per process and aborts on INVITE floods; "
        "run scripts/setup.sh without PJSUA2_SOURCE=pypi to build the vendored one",
    )
    return Pjsua2Build("pypi", version, PYPI_MAX_CALLS, vendored=False)
