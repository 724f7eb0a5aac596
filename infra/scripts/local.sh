#!/usr/bin/env bash
# Starts the whole service locally (docs/local-stack.md): moto as the embedded AWS, resources from
# template.yaml, the HTTP API on http://127.0.0.1:${PORT:-3000}, queue pollers and the sweeper.
#
#   infra/scripts/local.sh                  # fresh dev key printed on start
#   DEV_API_KEY=pck_test_... PORT=8080 ALLOW_PRIVATE_TARGETS=1 infra/scripts/local.sh
#
# The project virtualenv (.venv with moto[server] and cfn-lint) is created on first use, by this
# script or by puck-local itself; only python3 (with the venv module) and cargo are required.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
if [ ! -x .venv/bin/moto_server ] || [ ! -x .venv/bin/waitress-serve ]; then
  echo "creating .venv from infra/scripts/requirements.txt (first run)…" >&2
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet -r infra/scripts/requirements.txt
fi
exec cargo run --release -p puck-local --bin puck-local -- "$@"
