#!/usr/bin/env bash
# Installs everything the engine needs on a Debian machine; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# build-essential and swig build pjsua2 from third_party/pjproject; baresip is a second real
# SIP client for the tests; chromium drives the console's browser tests (Playwright uses it, it
# never downloads a browser); kamailio is the SIP load balancer in front of engine nodes.
DEBIAN_PACKAGES=(espeak-ng sip-tester sox libsox-fmt-all build-essential swig baresip chromium kamailio)

# The console's vendored Mermaid comes from the npm registry: the machine's Node.js (any npm
# will do), else Debian's.
command -v npm >/dev/null 2>&1 || DEBIAN_PACKAGES+=(npm)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "setup: installing Debian packages: ${missing[*]}"
        apt-get update -qq
        # Packages with a service (kamailio) must not start it: the balancer runs only when
        # `run_ivr.py balancer` starts it. policy-rc.d 101 tells invoke-rc.d to leave it alone.
        own_policy=0
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
            own_policy=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        if [ "$own_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
        command -v systemctl >/dev/null 2>&1 && systemctl disable --now kamailio >/dev/null 2>&1 || true
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
# The console's Mermaid, pinned by console/static/vendor/package-lock.json and served from
# /static (no CDN: a console may run offline). Only the prebuilt browser bundle is kept.
vendor=console/static/vendor
if [ ! -f "$vendor/mermaid.min.js" ] || [ "$vendor/package-lock.json" -nt "$vendor/mermaid.min.js" ]; then
    echo "setup: installing the console's Mermaid from the npm registry"
    (cd "$vendor" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    cp "$vendor/node_modules/mermaid/dist/mermaid.min.js" "$vendor/mermaid.min.js.tmp"
    mv "$vendor/mermaid.min.js.tmp" "$vendor/mermaid.min.js"
    rm -rf "$vendor/node_modules"
fi
echo "setup: done"
