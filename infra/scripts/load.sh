#!/usr/bin/env bash
# Load without loss (docs/local-stack.md): the local stack, 3 subscriptions to a local HTTPS receiver that
# fails 10% of requests at random (seeded), 10,000 events published concurrently; then every
# delivery must have ended `succeeded` and the receiver must have accepted every
# (subscription, event_id) pair. Prints duplicates and timings; exits non-zero on any loss.
#
#   infra/scripts/load.sh                     # 10,000 events
#   infra/scripts/load.sh --events 500 --pollers 4 --seed 7
#
# Not part of infra/scripts/test.sh (a 150-event version of the same check is: tests/tests/e2e/load.rs).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bash infra/scripts/bootstrap-python.sh
exec cargo run --quiet -p puck-e2e --bin puck-load -- "$@"
