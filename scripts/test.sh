#!/usr/bin/env bash
# The project's test command (the README's second command, and what .ci/run runs on a clean clone).
# Installs what the tests need when it is missing, starts the services they use, then runs every test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# Evaluation data and the MiniFASNet models live beside the checkout, never inside it.
export FACEPAY_SHARED="${FACEPAY_SHARED:-$root/../shared}"
if [ ! -d "$FACEPAY_SHARED/data" ]; then
  echo "test.sh: $FACEPAY_SHARED/data not found: tests that need the shared clips, stills and LFW will fail." >&2
  echo "         Put the shared/ folder beside the checkout or set FACEPAY_SHARED." >&2
fi

# Every test build uses these features, so the dependency tree is compiled once: the webcam support (nokhwa, the
# CLI's `camera` feature and the core's) is built and tested; scripts/test.d/30-camera.sh installs what it needs.
# No test needs a camera device.
export FACEPAY_TEST_FEATURES="${FACEPAY_TEST_FEATURES:-facepay/camera}"

# Every step runs, and cargo test after them, even when one fails: a red run lists all that failed, not the first.
# 20-postgres runs in this shell (it exports FACEPAY_TEST_DATABASE_URL and stops the server on exit); the others run
# in a subshell with `set -e` of their own, so a failing command ends its step only.
failed=()
for step in "$root"/scripts/test.d/*.sh; do
  [ -e "$step" ] || continue
  name="$(basename "$step" .sh)"
  if [ "$name" = 20-postgres ]; then
    # shellcheck source=/dev/null
    source "$step"
    continue
  fi
  set +e
  # shellcheck source=/dev/null
  (set -e; source "$step")
  status=$?
  set -e
  if [ "$status" -ne 0 ]; then
    echo "test.sh: step $name FAILED (exit $status); the other steps still run" >&2
    failed+=("$name")
  fi
done

# --no-fail-fast: every test binary runs, so one failure does not hide the others.
if ! cargo test --workspace --all-targets --no-fail-fast --features "$FACEPAY_TEST_FEATURES"; then
  failed+=("cargo test")
fi
if [ "${#failed[@]}" -gt 0 ]; then
  echo "test.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "test.sh: every step and cargo test passed" >&2
