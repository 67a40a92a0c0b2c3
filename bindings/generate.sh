#!/usr/bin/env bash
# Builds the FacePay cdylib and generates the Kotlin and Swift bindings from it (uniffi library mode) into
# bindings/generated/{kotlin,swift}; then checks that the generated C header compiles with clang.
# The generated files are build output (gitignored): never edit them, re-run this script.
#
#   bindings/generate.sh            # dev profile (what the tests use)
#   PROFILE=release bindings/generate.sh
# Prints the path of the built library on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
profile="${PROFILE:-dev}"
out="$here/generated"
cd "$root"

# FACEPAY_BUILD_SCOPE=workspace (what CI's test step uses) builds every workspace target in one go, so the
# dependency features match `cargo test --workspace --all-targets` and nothing is compiled twice. (`cargo build`,
# not `cargo test --no-run`: only `build` also links the `uniffi-bindgen` binary and the cdylib used below.)
if [ "${FACEPAY_BUILD_SCOPE:-crate}" = workspace ] && [ "$profile" = dev ]; then
  cargo build --workspace --all-targets ${FACEPAY_TEST_FEATURES:+--features "$FACEPAY_TEST_FEATURES"} >&2
else
  cargo build -p facepay-bindings --profile "$profile" >&2
  [ "$profile" = dev ] || cargo build -p facepay-bindings --bin uniffi-bindgen >&2
fi
target_dir="${CARGO_TARGET_DIR:-$root/target}"
dir_name="$profile"
[ "$profile" = dev ] && dir_name=debug
case "$(uname -s)" in
  Darwin) lib="$target_dir/$dir_name/libfacepay_bindings.dylib" ;;
  *) lib="$target_dir/$dir_name/libfacepay_bindings.so" ;;
esac
bindgen="$target_dir/debug/uniffi-bindgen"
for built in "$lib" "$bindgen"; do
  [ -x "$built" ] || { echo "generate.sh: expected $built after the build, but it is missing" >&2; exit 1; }
done

rm -rf "$out"
mkdir -p "$out/kotlin" "$out/swift"
"$bindgen" generate --library "$lib" --language kotlin --out-dir "$out/kotlin" --no-format >&2
"$bindgen" generate --library "$lib" --language swift --out-dir "$out/swift" --no-format >&2

# The Swift side talks to the library through this C header: it must compile on its own.
command -v clang >/dev/null || { echo "generate.sh: clang is needed to check the C header (apt-get install clang)" >&2; exit 1; }
for header in "$out"/swift/*.h; do
  for lang in c objective-c; do
    printf '#include "%s"\n' "$header" | clang -fsyntax-only -x "$lang" -Wall -Wextra -Werror - >&2
  done
done
echo "$lib"
