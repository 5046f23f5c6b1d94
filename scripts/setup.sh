#!/usr/bin/env bash
# Installs everything the engine needs on a Debian machine; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# build-essential and swig build pjsua2 from third_party/pjproject; baresip is a second real
# SIP client for the tests.
DEBIAN_PACKAGES=(espeak-ng sip-tester sox libsox-fmt-all build-essential swig baresip)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "setup: installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: these Debian packages are missing; run as root:" >&2
        echo "  sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating virtual environment .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[dev]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi

# pjsua2: built from the vendored pjproject (many calls per process, epoll) and cached outside
# the work tree; the PyPI wheel (4 calls, aborts on INVITE floods) only when asked for (not an
# IVR_ variable: those are settings, and serve refuses unknown ones).
if [ "${PJSUA2_SOURCE:-vendored}" = "pypi" ]; then
    echo "setup: WARNING: PJSUA2_SOURCE=pypi: using the PyPI pjsua2 wheel; it holds 4 calls per" >&2
    echo "setup: WARNING: process and aborts on a burst of INVITEs. Not for production." >&2
    .venv/bin/python -m pip uninstall -q -y pjsua2 2>/dev/null || true
    rm -f .venv/.pjsua2-*
    .venv/bin/python -m pip install -q "pjsua2-python>=2.15"
else
    .venv/bin/python -m pip install -q setuptools wheel
    wheel=$(scripts/build_pjsua2.sh .venv/bin/python | tail -n 1)
    pj_stamp=.venv/.pjsua2-$(sha256sum "$wheel" | cut -c1-16)
    if [ ! -f "$pj_stamp" ]; then
        echo "setup: installing $(basename "$wheel")"
        .venv/bin/python -m pip uninstall -q -y pjsua2-python 2>/dev/null || true
        .venv/bin/python -m pip install -q --no-deps --force-reinstall "$wheel"
        rm -f .venv/.pjsua2-*
        touch "$pj_stamp"
    fi
fi
echo "setup: done"
