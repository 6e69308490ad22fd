#!/usr/bin/env bash
# Browser tests (tests/browser): Debian's chromium and chromium-driver, installed when missing.
# Needs root and Debian's package lists (apt-get); nothing is downloaded by the tests themselves.
# Exit 0 when both are there afterwards; non-zero with one line on stderr saying why not.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "chromium/chromedriver are missing and installing them needs root (apt-get install chromium chromium-driver)" >&2
    exit 2
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium/chromedriver are missing and this machine has no apt-get" >&2
    exit 3
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null \
        || { echo "apt-get install chromium chromium-driver failed" >&2; exit 4; }
fi
command -v chromium >/dev/null && command -v chromedriver >/dev/null
