#!/usr/bin/env bash
# Builds the pjsua2 Python wheel from the vendored pjproject source (third_party/pjproject) and
# prints the wheel's path on its last line. The wheel is cached outside the work tree, keyed by
# the hashes of the tarball, config_site.h and this script: a second run, or CI on the same
# machine, reuses it at once. The first build takes about 5 minutes on 2 idle cores.
#
#   scripts/build_pjsua2.sh PYTHON     # PYTHON: the interpreter the wheel is built for
#
# Environment: IVR_BUILD_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/ivr-engine).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

PYTHON=${1:?usage: scripts/build_pjsua2.sh PYTHON}
# Absolute, but not through symlinks: a venv's python must stay the venv's.
case "$PYTHON" in
    */*) PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")" ;;
    *) PYTHON=$(command -v "$PYTHON") ;;
esac
"$PYTHON" -c 'import setuptools, wheel' 2>/dev/null || {
    echo "build_pjsua2: $PYTHON needs setuptools and wheel (pip install setuptools wheel)" >&2
    exit 1
}
src_dir=third_party/pjproject
tarball=$src_dir/pjproject-2.15.1.tar.xz
config_site=$src_dir/config_site.h
expected_sha=b5a4c4f73fd10cd92ccf6d43c1889015b1a05839c2436f1e41f39ad42c69dba9

actual_sha=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$actual_sha" != "$expected_sha" ]; then
    echo "build_pjsua2: $tarball has SHA-256 $actual_sha, expected $expected_sha (corrupt or replaced)" >&2
    exit 1
fi

py_tag=$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
patches=("$src_dir"/patches/*.patch)
key=$(cat "$tarball" "$config_site" "${patches[@]}" "$0" | sha256sum | cut -c1-16)
cache=${IVR_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ivr-engine}/pjsua2-$key-$py_tag
if compgen -G "$cache/pjsua2-*.whl" >/dev/null; then
    echo "build_pjsua2: using cached wheel in $cache" >&2
    ls "$cache"/pjsua2-*.whl | head -n 1
    exit 0
fi

for tool in swig make g++; do
    command -v "$tool" >/dev/null || {
        echo "build_pjsua2: '$tool' is missing (Debian: apt-get install build-essential swig)" >&2
        exit 1
    }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/pjsua2-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "build_pjsua2: building pjproject 2.15.1 in $work (first time only; about 5 minutes)" >&2
tar -xJf "$tarball" -C "$work"
pj="$work/pjproject-2.15.1"
cp "$config_site" "$pj/pjlib/include/pj/config_site.h"
for patch_file in "${patches[@]}"; do
    patch -s -p1 -d "$pj" <"$root/$patch_file" || {
        echo "build_pjsua2: $patch_file does not apply to pjproject 2.15.1" >&2
        exit 1
    }
done

jobs=$(nproc 2>/dev/null || echo 2)
log="$work/build.log"
(
    cd "$pj"
    export CFLAGS="-O2 -fPIC -DNDEBUG" CXXFLAGS="-O2 -fPIC -DNDEBUG"
    # No sound devices, video, TLS or optional codecs: the engine speaks G.711 to a null
    # sound device and records through its own media ports.
    ./configure --disable-shared --disable-sound --disable-video --disable-ssl --enable-epoll \
        --disable-speex-aec --disable-speex-codec --disable-gsm-codec --disable-ilbc-codec \
        --disable-g722-codec --disable-g7221-codec --disable-l16-codec --disable-opencore-amr \
        --disable-silk --disable-opus --disable-bcg729 --disable-libyuv --disable-libwebrtc \
        --disable-sdl --disable-ffmpeg --disable-v4l2 --disable-openh264 --disable-vpx \
        --disable-upnp --disable-android-mediacodec --disable-darwin-ssl
    make dep
    make -j"$jobs" lib
    cd pjsip-apps/src/swig/python
    make pjsua2_wrap.cpp
    # The generated wrapper is large: one compiler at a time keeps memory use modest.
    "$PYTHON" -m pip wheel --no-deps --no-build-isolation -w "$work/dist" .
) >"$log" 2>&1 || {
    echo "build_pjsua2: build failed; last lines of $log:" >&2
    tail -n 40 "$log" >&2
    trap - EXIT
    exit 1
}

wheel=$(ls "$work"/dist/pjsua2-*.whl | head -n 1)
strip_dir="$work/strip"
mkdir -p "$strip_dir"
(cd "$strip_dir" && "$PYTHON" -m zipfile -e "$wheel" . && find . -name '_pjsua2*.so' -exec strip --strip-unneeded {} +)
mkdir -p "$cache"
"$PYTHON" - "$strip_dir" "$cache/$(basename "$wheel")" <<'PY'
"""Re-pack the stripped wheel; RECORD hashes are rewritten so pip accepts it."""
import base64, hashlib, pathlib, sys, zipfile
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
files = sorted(p for p in src.rglob("*") if p.is_file())
record = next(p for p in files if p.name == "RECORD" and p.parent.name.endswith(".dist-info"))
lines = []
for p in files:
    rel = p.relative_to(src).as_posix()
    if p == record:
        continue
    digest = base64.urlsafe_b64encode(hashlib.sha256(p.read_bytes()).digest()).rstrip(b"=").decode()
    lines.append(f"{rel},sha256={digest},{p.stat().st_size}")
lines.append(f"{record.relative_to(src).as_posix()},,")
record.write_text("\n".join(lines) + "\n")
tmp = out.with_suffix(".part")
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
    for p in files:
        zf.write(p, p.relative_to(src).as_posix())
tmp.rename(out)
PY
echo "build_pjsua2: cached $(basename "$wheel") in $cache" >&2
echo "$cache/$(basename "$wheel")"
