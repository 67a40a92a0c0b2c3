#!/usr/bin/env bash
# The Kotlin end-to-end test of the generated bindings, on the JVM:
#   1. generates the bindings (bindings/generate.sh: builds the cdylib, Kotlin + Swift, header check);
#   2. converts the MiniFASNet models of $FACEPAY_SHARED/models to the NNEF form the library loads
#      (`facepay models nnef`, into a temp dir: the test reads them through a Kotlin ModelAssets);
#   3. starts a real facepay-server on loopback (plain HTTP, SQLite in a temp dir, challenge set `blink` to match
#      the recorded clip) and creates a merchant with its CLI;
#   4. compiles the generated Kotlin with the tests in this folder and runs them against that server.
# Needs: KOTLINC (kotlinc-jvm of the npm package kotlin-compiler), KOTLIN_LIB (its lib/ folder, with
# kotlinx-coroutines-core-jvm.jar), JNA_JAR (Debian libjna-java), java, FACEPAY_SHARED.
# scripts/test.d/50-kotlin.sh installs them and runs this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$root"
: "${KOTLINC:?set KOTLINC to kotlinc-jvm}" "${KOTLIN_LIB:?set KOTLIN_LIB to the kotlin-compiler lib folder}"
: "${JNA_JAR:=/usr/share/java/jna.jar}" "${FACEPAY_SHARED:=$root/../shared}"
for need in "$JNA_JAR" "$KOTLIN_LIB/kotlinx-coroutines-core-jvm.jar" "$FACEPAY_SHARED/data/clips/live-blink-7"; do
  [ -e "$need" ] || { echo "kotlin test: missing $need" >&2; exit 1; }
done

lib="$(bindings/generate.sh | tail -n 1)"
# (With FACEPAY_BUILD_SCOPE=workspace, generate.sh has built the server binary already.)
[ "${FACEPAY_BUILD_SCOPE:-crate}" = workspace ] || cargo build -p facepay-server --bin facepay-server -p facepay --bin facepay >&2
server_bin="${CARGO_TARGET_DIR:-$root/target}/debug/facepay-server"
facepay_bin="${CARGO_TARGET_DIR:-$root/target}/debug/facepay"

work="$(mktemp -d "${TMPDIR:-/tmp}/facepay-kotlin.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

antispoof="$work/antispoof-nnef"
"$facepay_bin" models nnef --onnx "$FACEPAY_SHARED/models" --out "$antispoof" --check >&2

db="$work/checkout.sqlite"
merchant_json="$("$server_bin" merchant create --name kotlin-test --db "$db" --json)"
api_key="$(printf '%s' "$merchant_json" | sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p')"
[ -n "$api_key" ] || { echo "kotlin test: no api_key in $merchant_json" >&2; exit 1; }
"$server_bin" serve --listen 127.0.0.1:0 --plain-http --challenge-set blink --db "$db" 2>"$work/server.log" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
  url="$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/server.log" | head -n 1)"
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "kotlin test: the server exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/server.log" >&2; echo "kotlin test: the server did not start" >&2; exit 1; }
echo "kotlin test: facepay-server at $url" >&2

classpath="$JNA_JAR:$KOTLIN_LIB/kotlinx-coroutines-core-jvm.jar"
# Every generated file: the bindings' package and the core's (dev.facepay.sdk.core).
mapfile -t generated < <(find bindings/generated/kotlin -name '*.kt' | sort)
"$KOTLINC" -nowarn -cp "$classpath" -d "$work/test.jar" "${generated[@]}" "$here"/*.kt
FACEPAY_TEST_SERVER="$url" FACEPAY_TEST_MERCHANT_KEY="$api_key" FACEPAY_SHARED="$FACEPAY_SHARED" \
FACEPAY_MODELS="$root/models" FACEPAY_TEST_ANTISPOOF_NNEF="$antispoof" \
  java -Djna.library.path="$(dirname "$lib")" -cp "$work/test.jar:$classpath:$KOTLIN_LIB/kotlin-stdlib.jar" \
  dev.facepay.test.FacePayBindingTestKt
