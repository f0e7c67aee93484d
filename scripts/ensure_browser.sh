#!/usr/bin/env bash
# Make sure a headless Chromium is available for the diagram page tests (tests/diagrams).
#
#   scripts/ensure_browser.sh             required: install Debian's `chromium` with apt-get when it
#                                         is missing (root or passwordless sudo); exit 1, saying why,
#                                         when no browser can be had
#   scripts/ensure_browser.sh --optional  the same, but never fails: where the browser cannot be
#                                         installed (no apt-get, not root, MEERKAT_INSTALL_BROWSER=0)
#                                         it says that the page tests will be skipped, and exits 0
#   scripts/ensure_browser.sh --for-tests what `./run test` uses: required under CI (CI set, and not
#                                         empty, 0 or false: CI always runs the page tests), else
#                                         --optional
#
# Idempotent and non-interactive; it says what it installs before installing it (system-wide).
# MEERKAT_CHROMIUM names a browser executable to use instead of `chromium` on PATH.
set -euo pipefail

optional=0
case "${1:-}" in
    --optional) optional=1 ;;
    --for-tests)
        case "${CI:-}" in
            ""|0|false) optional=1 ;;
        esac
        ;;
    "") ;;
    *) echo "ensure_browser: unknown option '$1' (usage: ensure_browser.sh [--optional|--for-tests])" >&2; exit 2 ;;
esac

for candidate in "${MEERKAT_CHROMIUM:-}" chromium chromium-browser; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then
        exit 0
    fi
done

die() {
    if [ "$optional" = 1 ]; then
        echo "ensure_browser: $*; the browser page tests will be skipped (they are reported as skipped)" >&2
        exit 0
    fi
    echo "ensure_browser: $*" >&2
    exit 1
}

if [ "$optional" = 1 ] && [ "${MEERKAT_INSTALL_BROWSER:-1}" = "0" ]; then
    die "chromium is not installed and MEERKAT_INSTALL_BROWSER=0"
fi

command -v apt-get >/dev/null 2>&1 \
    || die "chromium is not installed and apt-get is not available; install Chromium (or Google Chrome as 'chromium', or set MEERKAT_CHROMIUM) by hand"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null \
        || die "chromium is not installed; run as root or with passwordless sudo (apt-get install -y chromium)"
    SUDO="sudo -n"
fi

if [ "$optional" = 1 ]; then
    echo "ensure_browser: installing Debian's chromium system-wide with apt-get, for the browser page tests" \
        "(set MEERKAT_INSTALL_BROWSER=0 to skip those tests instead)" >&2
else
    echo "ensure_browser: installing Debian's chromium system-wide with apt-get, for the browser page tests" >&2
fi
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
