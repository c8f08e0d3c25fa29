#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the report's browser test (a browser that a test tool
# downloads by itself cannot run offline). Needs root or passwordless sudo; without them the
# browser test is skipped with that reason, and nothing else depends on it.
set -u
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi
sudo=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
        echo "Chromium is not installed and this user cannot install it: the browser test will be skipped" >&2
        exit 0
    fi
fi
{ $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; } \
    || echo "Chromium could not be installed: the browser test will be skipped" >&2
exit 0
