#!/usr/bin/env bash
# Debian's chromium and chromium-driver for the console's browser tests (tests/tests/e2e/console.rs).
# Installs them with apt-get when either is missing; the tests fail with a clear message without them.
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "chromium and chromedriver are missing and apt-get is not available: install them by hand" >&2
  exit 1
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "== installing chromium and chromium-driver (console browser tests)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
