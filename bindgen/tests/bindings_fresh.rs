//! With `--features buildtime-bindgen`, checks that the committed `src/bindings.rs` equals
//! what bindgen generates now from the installed headers. `TLSRESUME_BLESS=1` rewrites the
//! committed file instead (used by `regenerate.sh`).
#![cfg(feature = "buildtime-bindgen")]

#[test]
fn committed_bindings_match_freshly_generated_ones() {
    let fresh = include_str!(concat!(env!("OUT_DIR"), "/bindings.rs"));
    let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/bindings.rs");
    let committed = std::fs::read_to_string(committed_path).unwrap_or_default();
    if std::env::var_os("TLSRESUME_BLESS").is_some() {
        std::fs::write(committed_path, fresh).expect("write src/bindings.rs");
        return;
    }
    assert!(
        committed == fresh,
        "src/bindings.rs is stale: run bindgen/regenerate.sh (needs libclang-dev) and commit it"
    );
}
