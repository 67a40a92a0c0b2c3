#!/usr/bin/env bash
# Usage: scripts/bench-server.sh [RUNS] FACEPAY_BINARY [REFERENCE_BINARY]
#
# Runs `facepay bench server` RUNS times (default 4), each time on SQLite and then on a throw-away PostgreSQL
# cluster with fsync and synchronous_commit ON (as production runs it; the test suite's cluster has fsync off).
# With a reference binary (say, a release build of the previous commit) the two alternate run by run, so both
# see the same machine, and the medians and their ratio are printed at the end. One JSON line per run on stdout:
# {"build": "new"|"reference", ...the bench's own object}.
set -euo pipefail

runs=4
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then runs="$1"; shift; fi
new="${1:?usage: scripts/bench-server.sh [RUNS] FACEPAY_BINARY [REFERENCE_BINARY]}"
reference="${2:-}"

# A cluster of our own with production durability (the helper stops it and removes it on exit).
unset FACEPAY_TEST_DATABASE_URL
export FACEPAY_PG_FSYNC=on
# shellcheck source=test.d/20-postgres.sh
source "$(dirname "$0")/test.d/20-postgres.sh"
url="$FACEPAY_TEST_DATABASE_URL"

out="$(mktemp /tmp/facepay-bench-server.XXXXXX.jsonl)"
for i in $(seq 1 "$runs"); do
  for build in new reference; do
    binary="$new"
    if [ "$build" = reference ]; then
      [ -n "$reference" ] || continue
      binary="$reference"
    fi
    echo "bench-server: run $i/$runs, $build ($binary)" >&2
    line="$("$binary" bench server --json --seconds 10 --database-url "$url")"
    echo "{\"build\":\"$build\",${line#\{}" | tee -a "$out"
  done
done

python3 - "$out" <<'PY' >&2
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
medians = {}
for build in ("new", "reference"):
    mine = [r for r in rows if r["build"] == build]
    if not mine:
        continue
    for db in ("sqlite", "postgres"):
        rates = [r[db]["payments_per_s"] for r in mine]
        p99 = [r[db]["p99_ms"] for r in mine]
        medians[(build, db)] = statistics.median(rates)
        print(f"{build:9} {db:8} payments/s {min(rates):6.0f}-{max(rates):6.0f} median {statistics.median(rates):6.0f}"
              f"   p99 {min(p99):.1f}-{max(p99):.1f} ms   errors {sum(r[db]['errors'] for r in mine)}")
for db in ("sqlite", "postgres"):
    if ("reference", db) in medians:
        print(f"{db}: new / reference = {medians[('new', db)] / medians[('reference', db)]:.2f}")
PY
