# Sourced by scripts/test.sh: type-checks the core and the bindings for Android (aarch64-linux-android), so nothing
# platform-specific breaks the mobile build unseen. Linking needs the NDK, which CI does not have: `cargo check`
# only. ring's C is compiled with the host clang for the Android target (no NDK sysroot: freestanding headers).
if ! rustup target list --installed | grep -qx aarch64-linux-android; then
  rustup target add aarch64-linux-android >&2
fi
if ! command -v clang >/dev/null || ! command -v llvm-ar >/dev/null; then
  apt-get update -qq && apt-get install -y -qq clang llvm >/dev/null
fi
CC_aarch64_linux_android=clang AR_aarch64_linux_android=llvm-ar \
CFLAGS_aarch64_linux_android="--target=aarch64-linux-android24 -ffreestanding -nostdlibinc -DRING_CORE_NOSTDLIBINC=1" \
  cargo check --target aarch64-linux-android -p facepay-core -p facepay-bindings >&2
