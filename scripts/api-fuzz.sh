#!/usr/bin/env bash
# Fuzzes the real facepay-server against its own contract, docs/openapi.yaml, with Schemathesis: every operation,
# a bounded number of generated requests each (valid and invalid data), checking that no response is a 5xx and
# that every response matches the document (status code, content type, headers, body schema).
#
# Installs Schemathesis from PyPI into a venv (target/api-fuzz/venv), builds and starts facepay-server on
# 127.0.0.1 over a fresh SQLite file (or PostgreSQL with DATABASE_URL=postgres://…), creates a merchant and runs
# with its API key. Ends with one line `N passed, N failed` (operations). Exit status 0 only when none failed.
#
#   scripts/api-fuzz.sh                  # 25 examples per operation (CI)
#   API_FUZZ_EXAMPLES=200 scripts/api-fuzz.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

examples="${API_FUZZ_EXAMPLES:-25}"
schemathesis_version="4.32.5"
work="$root/target/api-fuzz"
venv="$work/venv"
mkdir -p "$work"

if [ ! -x "$venv/bin/schemathesis" ] || ! "$venv/bin/schemathesis" --version | grep -q "$schemathesis_version"; then
  echo "api-fuzz: installing Schemathesis $schemathesis_version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
fi

if [ -n "${FACEPAY_TEST_FEATURES:-}" ]; then
  # Called from scripts/test.sh: the same build as the test run that follows, so nothing is compiled twice.
  cargo build --quiet --workspace --all-targets --features "$FACEPAY_TEST_FEATURES"
else
  cargo build --quiet -p facepay-server --bin facepay-server
fi
server_bin="$root/target/debug/facepay-server"
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
  server_bin="$CARGO_TARGET_DIR/debug/facepay-server"
fi

run_dir="$(mktemp -d "$work/run.XXXXXX")"
db_args=(--db "$run_dir/fuzz.sqlite")
if [ -n "${DATABASE_URL:-}" ]; then
  db_args=(--database-url "$DATABASE_URL")
fi
new_merchant_key() {
  "$server_bin" merchant create --name "Fuzz shop $1" --json "${db_args[@]}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])'
}

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$server_bin" serve --plain-http --listen "127.0.0.1:$port" "${db_args[@]}" \
  --metrics-token "fuzz-metrics-$$" >"$run_dir/server.log" 2>&1 &
server_pid=$!
cleanup() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 200); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/healthz')" 2>/dev/null; then
    break
  fi
  sleep 0.1
done

echo "api-fuzz: Schemathesis $schemathesis_version, $examples examples per operation, against 127.0.0.1:$port" >&2
# One run for every operation but the key roll, then one for the key roll with another merchant: a roll with
# expire_current_after_s=0 ends the key the fuzzer authenticates with, which would leave the rest of a shared run
# testing only 401s.
fuzz() {
  local name="$1" key="$2"
  shift 2
  "$venv/bin/schemathesis" run "$root/docs/openapi.yaml" \
    --url "http://127.0.0.1:$port" \
    --header "Authorization: Bearer $key" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --mode all \
    --phases examples,coverage,fuzzing \
    --max-examples "$examples" \
    --seed 14 \
    --workers 2 \
    --request-timeout 10 \
    --suppress-health-check all \
    --warnings off \
    --no-color \
    --report junit --report-junit-path "$run_dir/junit-$name.xml" \
    "$@" >"$run_dir/schemathesis-$name.log" 2>&1
}
set +e
fuzz all "$(new_merchant_key 1)" --exclude-operation-id rollApiKey
status_all=$?
fuzz roll "$(new_merchant_key 2)" --include-operation-id rollApiKey
status_roll=$?
set -e
status=0
if [ "$status_all" -ne 0 ] || [ "$status_roll" -ne 0 ]; then
  status=1
fi
cat "$run_dir/schemathesis-all.log" "$run_dir/schemathesis-roll.log" >"$run_dir/schemathesis.log"
tail -n 60 "$run_dir/schemathesis.log" >&2
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "api-fuzz: the server died during the run; its log:" >&2
  tail -n 40 "$run_dir/server.log" >&2
  status=1
fi
if grep -q "panicked" "$run_dir/server.log"; then
  echo "api-fuzz: the server logged a panic:" >&2
  grep -n -A3 "panicked" "$run_dir/server.log" | head -n 20 >&2
  status=1
fi
# One line: operations passed / failed, from the JUnit report.
python3 - "$status" "$run_dir/junit-all.xml" "$run_dir/junit-roll.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
status, paths = int(sys.argv[1]), sys.argv[2:]
cases = []
for path in paths:
    try:
        cases += list(ET.parse(path).getroot().iter("testcase"))
    except (OSError, ET.ParseError) as e:
        print(f"api-fuzz: no JUnit report {path} ({e})", file=sys.stderr)
        status = status or 1
failed = sum(1 for c in cases if c.find("failure") is not None or c.find("error") is not None)
passed = len(cases) - failed
if not cases or (status != 0 and failed == 0):
    failed = max(failed, 1)
print(f"{passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
PY
