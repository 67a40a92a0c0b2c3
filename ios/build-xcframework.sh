#!/usr/bin/env bash
# Builds FacePayFFI.xcframework (static library + C header + module map for iOS devices, the iOS simulator and
# macOS) and copies the generated Swift into Sources/FacePay/Generated. Run on a Mac with Xcode:
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin
#   ios/build-xcframework.sh && cd ios && swift test        # (macOS slice; or xcodebuild test on a simulator)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
"$root/bindings/generate.sh" >/dev/null
gen="$root/bindings/generated/swift"
for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin; do
  cargo build --release -p facepay-bindings --lib --target "$t"
done
lib=libfacepay_bindings.a
out="$root/target/xcframework"
rm -rf "$out" "$here/FacePayFFI.xcframework"
mkdir -p "$out/headers" "$out/ios-sim"
# Two C modules in one module map: FacePayFFI (the bindings) and FacePayCoreFFI (the core's own types). Their
# Swift files (FacePay.swift, FacePayCore.swift) compile together into the one `FacePay` Swift module.
cp "$gen"/*.h "$out/headers/"
for map in "$gen"/*.modulemap; do cat "$map"; echo; done > "$out/headers/module.modulemap"
lipo -create "target/aarch64-apple-ios-sim/release/$lib" "target/x86_64-apple-ios/release/$lib" -output "$out/ios-sim/$lib"
xcodebuild -create-xcframework \
  -library "target/aarch64-apple-ios/release/$lib" -headers "$out/headers" \
  -library "$out/ios-sim/$lib" -headers "$out/headers" \
  -library "target/aarch64-apple-darwin/release/$lib" -headers "$out/headers" \
  -output "$here/FacePayFFI.xcframework"
mkdir -p "$here/Sources/FacePay/Generated"
cp "$gen"/*.swift "$here/Sources/FacePay/Generated/"
echo "built $here/FacePayFFI.xcframework"
