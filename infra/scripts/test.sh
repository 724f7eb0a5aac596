#!/usr/bin/env bash
# The whole test suite: formatting, template lint, unit + handler tests, and end-to-end tests against the
# local stack (moto + real HTTPS receivers) and the web console in headless Chromium. Installs what it
# needs (the project virtualenv, Debian chromium + chromium-driver) itself.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bash infra/scripts/bootstrap-python.sh
export PATH="$root/.venv/bin:$PATH"
bash infra/scripts/install-chromium.sh

echo "== cargo fmt --check (rustfmt.toml)"
cargo fmt --all --check

echo "== cfn-lint template.yaml"
cfn-lint template.yaml

echo "== clippy (warnings denied)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test (unit, handler, end-to-end)"
# Three at a time: the e2e tests share one moto, and the timing bounds of some (retry gaps,
# auto-disable windows) are honest only while the 2-core machine is not saturated.
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-3}"
