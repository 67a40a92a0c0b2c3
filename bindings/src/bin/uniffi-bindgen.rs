//! `uniffi-bindgen`, pinned to the uniffi version the library is built with (library mode:
//! `uniffi-bindgen generate --library <cdylib> --language kotlin|swift --out-dir <dir>`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
