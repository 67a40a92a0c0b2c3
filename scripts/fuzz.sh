#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60), starting from its committed seed corpus.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      # e.g. scripts/fuzz.sh 600, or scripts/fuzz.sh 30 frame_convert
#
# Targets: frame_convert (every pixel format, stride, rotation), image_decode (JPEG/PNG), payload_decode (the
# canonical payment payload), template_codec (the sealed template), server_json (the server's JSON bodies).
# Seeds: fuzz/corpus/<target>/ (committed, never written to). What a run discovers goes to
# target/fuzz/corpus/<target>/ (kept between runs, not committed); a crash is written to
# fuzz/artifacts/<target>/ and stops the script with exit 1: fix it and turn the input into a unit test next to the
# code it broke (fuzz/README.md).
#
# Toolchain: cargo-fuzz needs unstable rustc flags (-Z sanitizer=address). The default toolchain (stable in CI) runs
# with RUSTC_BOOTSTRAP=1; FUZZ_TOOLCHAIN=nightly uses an installed nightly instead. cargo-fuzz itself is installed
# from crates.io into target/tools/cargo-fuzz when missing. FUZZ_NICE=N runs the build and fuzzers under `nice -n N`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
shift || true
all=(frame_convert image_decode payload_decode template_codec server_json)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -ge 1 ] || { echo "fuzz.sh: SECONDS must be a positive integer" >&2; exit 2; }

CARGO_FUZZ_VERSION=0.13.2
tools="$root/target/tools/cargo-fuzz"
cargo_fuzz="$tools/bin/cargo-fuzz"
if [ ! -x "$cargo_fuzz" ] || ! "$cargo_fuzz" --version | grep -q " $CARGO_FUZZ_VERSION"; then
  echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io into $tools" >&2
  cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$tools" >&2
fi

export PATH="$tools/bin:$PATH"
toolchain=()
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
  toolchain=("+$FUZZ_TOOLCHAIN")
else
  export RUSTC_BOOTSTRAP=1
fi
nice_cmd=()
[ -z "${FUZZ_NICE:-}" ] || nice_cmd=(nice -n "$FUZZ_NICE")
fuzz_target_dir="$root/target/fuzz"

cd "$root/fuzz"
started=$(date +%s)
echo "fuzz.sh: building ${targets[*]} (${toolchain[*]:-default toolchain with RUSTC_BOOTSTRAP=1})" >&2
for t in "${targets[@]}"; do
  "${nice_cmd[@]}" cargo "${toolchain[@]}" fuzz build --target-dir "$fuzz_target_dir" "$t" >&2
done
built=$(date +%s)
for t in "${targets[@]}"; do
  work="$fuzz_target_dir/corpus/$t"
  mkdir -p "$work" "artifacts/$t"
  echo "fuzz.sh: $t for ${seconds}s (seeds: fuzz/corpus/$t, new inputs: $work)" >&2
  # -max_len: frames need a header and a few KB of pixels; -timeout: one input may not take 10 s.
  "${nice_cmd[@]}" cargo "${toolchain[@]}" fuzz run --target-dir "$fuzz_target_dir" "$t" "$work" "corpus/$t" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" 2>"$fuzz_target_dir/$t.log" || {
    tail -n 40 "$fuzz_target_dir/$t.log" >&2
    echo "fuzz.sh: $t FAILED: crash input in fuzz/artifacts/$t/ (log: $fuzz_target_dir/$t.log)" >&2
    exit 1
  }
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$fuzz_target_dir/$t.log" | tail -n 1)"
  echo "fuzz.sh: $t ok: ${runs:-?} inputs in ${seconds}s, no crash" >&2
done
echo "fuzz.sh: all ${#targets[@]} targets passed (build $((built - started))s, runs $(( $(date +%s) - built ))s)" >&2
