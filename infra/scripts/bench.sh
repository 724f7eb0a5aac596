#!/usr/bin/env bash
# The benchmark (docs/benchmarks.md): builds the release binaries, then measures cold start, size, peak
# memory, AWS calls and dollars per delivery, local-stack latency/throughput and signing cost,
# each beside a reference measured in the same run, and writes BENCHMARKS.md at the repo root.
#
#   infra/scripts/bench.sh                      # full run (~5-10 min on 2 cores, after the build)
#   infra/scripts/bench.sh --runs 5 --events 200
#   infra/scripts/bench.sh --quick             # dev builds, fewer events per scenario (stated in the report)
#
# Writes BENCHMARKS.md and BENCHMARKS.json at the repo root.
# Not part of infra/scripts/test.sh. Needs cargo, python3 (moto is installed into .venv by
# bootstrap-python.sh) and, for zipped sizes, `zip`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bash infra/scripts/bootstrap-python.sh

# Two builds on purpose: puck-bench depends on puck-local, which enables the test-only
# `fault-injection` feature of puck-aws/puck-api/puck-workers. Built in one cargo invocation,
# feature unification would put that code into the function binaries being measured; built
# separately, the function binaries are exactly what `sam build` ships.
profile=release
flag=--release
for arg in "$@"; do
  if [ "$arg" = "--quick" ]; then profile=debug; flag=; fi
done
echo "== cargo build $flag -p puck-api -p puck-workers" >&2
cargo build $flag -p puck-api -p puck-workers
echo "== cargo build $flag -p puck-bench" >&2
cargo build $flag -p puck-bench

target="${CARGO_TARGET_DIR:-$root/target}"
echo "== puck-bench $*" >&2
exec "$target/$profile/puck-bench" --bin-dir "$target/$profile" --out "$root/BENCHMARKS.md" --json "$root/BENCHMARKS.json" "$@"
