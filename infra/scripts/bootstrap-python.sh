#!/usr/bin/env bash
# Creates the project-local virtualenv (.venv) with the Python tools the local stack and the
# tests use: moto (the embedded AWS), cfn-lint, and the public standardwebhooks library (an
# independent check of our signatures). Idempotent and quick when already done.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.venv"
requirements="$root/infra/scripts/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "bootstrap: creating $venv (moto, cfn-lint, standardwebhooks)…" >&2
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
echo "$want" > "$stamp"
