#!/usr/bin/env bash
# Make sure a headless Chromium is available for the diagram page test (tests/diagrams).
# Idempotent and non-interactive: does nothing when chromium is already installed, otherwise
# installs Debian's `chromium` package with apt-get (needs root or passwordless sudo).
# Fails loudly (non-zero exit, message on stderr) when it cannot provide a browser.
set -euo pipefail

for candidate in chromium chromium-browser; do
    if command -v "$candidate" >/dev/null 2>&1; then
        exit 0
    fi
done

die() { echo "ensure_browser: $*" >&2; exit 1; }

command -v apt-get >/dev/null 2>&1 \
    || die "chromium is not installed and apt-get is not available; install Chromium (or Google Chrome as 'chromium') by hand"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "chromium is not installed; run as root or install sudo (apt-get install -y chromium)"
    SUDO="sudo -n"
fi

echo "ensure_browser: installing chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
if ! { $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends chromium; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    die "apt-get could not install chromium (see the output above)"
fi
rm -f "$log"
command -v chromium >/dev/null 2>&1 || die "apt-get finished but no 'chromium' command is on PATH"
echo "ensure_browser: $(chromium --version 2>/dev/null || echo chromium) is installed" >&2
