#!/usr/bin/env bash
# Debian's Chromium and its WebDriver, for the explorer's browser test (tests/workflow/test_explorer.py).
#
#   bash scripts/browser_local.sh install   # apt-get install chromium chromium-driver (needs root or sudo)
#
# Prints the browser's and the driver's paths once both are there.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

have() { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }

case "${1:-}" in
    install)
        if ! have; then
            echo "browser_local: installing Debian's chromium and chromium-driver" >&2
            as_root apt-get update -qq
            DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
                chromium chromium-driver fonts-dejavu-core >/dev/null
        fi
        have || { echo "browser_local: chromium or chromedriver still missing" >&2; exit 1; }
        echo "chromium=$(command -v chromium)"
        echo "chromedriver=$(command -v chromedriver)"
        ;;
    *)
        echo "usage: bash scripts/browser_local.sh install" >&2
        exit 2
        ;;
esac
