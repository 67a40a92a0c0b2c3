#!/usr/bin/env bash
# Builds the FacePay native library for Android and the Kotlin bindings the `facepay` module compiles:
#   - jniLibs for arm64-v8a, armeabi-v7a and x86_64 with cargo-ndk (release profile, 16 KB page-aligned ELF
#     segments as Android 15+ requires), into facepay/src/main/jniLibs/;
#   - the generated Kotlin (bindings/generate.sh), which facepay/build.gradle.kts adds as a source folder.
# Needs: the Android NDK (ANDROID_NDK_HOME), `cargo install cargo-ndk`, and
# `rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
"$root/bindings/generate.sh" >/dev/null
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-z,max-page-size=16384"
cargo ndk --platform 24 -t arm64-v8a -t armeabi-v7a -t x86_64 -o "$here/facepay/src/main/jniLibs" \
  build --release -p facepay-bindings --lib
echo "jniLibs in $here/facepay/src/main/jniLibs; now: cd android && ./gradlew :sample:assembleDebug"
