//! Finds GnuTLS through pkg-config and provides the bindings in `OUT_DIR/bindings.rs`: a copy
//! of the committed `src/bindings.rs`, or (feature `buildtime-bindgen`) bindgen's fresh output.

use std::env;
use std::path::PathBuf;

/// The oldest GnuTLS the bindings are for: `gnutls_ciphersuite_get` appeared in 3.7.4.
const MIN_VERSION: &str = "3.7.4";

/// Every function the safe wrapper calls, and nothing else.
pub const FUNCTIONS: &[&str] = &[
    "dane_query_deinit",
    "dane_raw_tlsa",
    "dane_state_deinit",
    "dane_state_init",
    "dane_strerror",
    "dane_verify_crt_raw",
    "gnutls_alert_send_appropriate",
    "gnutls_alpn_get_selected_protocol",
    "gnutls_alpn_set_protocols",
    "gnutls_bye",
    "gnutls_certificate_allocate_credentials",
    "gnutls_certificate_client_get_request_status",
    "gnutls_certificate_free_credentials",
    "gnutls_certificate_get_ours",
    "gnutls_certificate_get_peers",
    "gnutls_certificate_server_set_request",
    "gnutls_certificate_set_known_dh_params",
    "gnutls_certificate_set_ocsp_status_request_mem",
    "gnutls_certificate_set_x509_key_mem2",
    "gnutls_certificate_set_x509_trust_mem",
    "gnutls_certificate_type_get2",
    "gnutls_certificate_verify_peers3",
    "gnutls_check_version",
    "gnutls_cipher_get",
    "gnutls_cipher_get_key_size",
    "gnutls_cipher_get_name",
    "gnutls_cipher_suite_info",
    "gnutls_ciphersuite_get",
    "gnutls_credentials_set",
    "gnutls_db_set_cache_expiration",
    "gnutls_deinit",
    "gnutls_dh_get_prime_bits",
    "gnutls_error_is_fatal",
    "gnutls_global_init",
    "gnutls_global_set_time_function",
    "gnutls_group_get",
    "gnutls_handshake",
    "gnutls_handshake_set_hook_function",
    "gnutls_handshake_set_post_client_hello_function",
    "gnutls_init",
    "gnutls_kx_get",
    "gnutls_kx_get_name",
    "gnutls_mac_get",
    "gnutls_mac_get_name",
    "gnutls_ocsp_status_request_enable_client",
    "gnutls_ocsp_status_request_is_checked",
    "gnutls_priority_deinit",
    "gnutls_priority_get_cipher_suite_index",
    "gnutls_priority_init",
    "gnutls_priority_set_direct",
    "gnutls_protocol_get_version",
    "gnutls_record_recv",
    "gnutls_record_send",
    "gnutls_server_name_get",
    "gnutls_server_name_set",
    "gnutls_session_get_data2",
    "gnutls_session_get_desc",
    "gnutls_session_get_flags",
    "gnutls_session_get_ptr",
    "gnutls_session_is_resumed",
    "gnutls_session_resumption_requested",
    "gnutls_session_set_data",
    "gnutls_session_set_ptr",
    "gnutls_session_set_verify_cert",
    "gnutls_session_ticket_enable_server",
    "gnutls_session_ticket_send",
    "gnutls_sign_algorithm_get",
    "gnutls_strerror",
    "gnutls_transport_set_errno",
    "gnutls_transport_set_ptr",
    "gnutls_transport_set_pull_function",
    "gnutls_transport_set_push_function",
    "gnutls_x509_crt_check_hostname",
    "gnutls_x509_crt_deinit",
    "gnutls_x509_crt_import",
    "gnutls_x509_crt_init",
];

/// The enums and structs used by name (types reached from a function come along anyway).
pub const TYPES: &[&str] = &[
    "dane_state_flags_t",
    "dane_verify_flags_t",
    "dane_verify_status_t",
    "gnutls_certificate_request_t",
    "gnutls_certificate_status_t",
    "gnutls_cipher_algorithm_t",
    "gnutls_close_request_t",
    "gnutls_credentials_type_t",
    "gnutls_ctype_target_t",
    "gnutls_datum_t",
    "gnutls_handshake_description_t",
    "gnutls_init_flags_t",
    "gnutls_pkcs_encrypt_flags_t",
    "gnutls_protocol_t",
    "gnutls_server_name_type_t",
    "gnutls_session_flags_t",
    "gnutls_x509_crt_fmt_t",
];

/// Variables and `#define` constants.
pub const VARS: &[&str] = &[
    "gnutls_free",
    "GNUTLS_E_AGAIN",
    "GNUTLS_E_CERTIFICATE_ERROR",
    "GNUTLS_E_CERTIFICATE_REQUIRED",
    "GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR",
    "GNUTLS_E_NO_CERTIFICATE_FOUND",
    "GNUTLS_E_FATAL_ALERT_RECEIVED",
    "GNUTLS_E_INTERNAL_ERROR",
    "GNUTLS_E_INTERRUPTED",
    "GNUTLS_E_PREMATURE_TERMINATION",
    "GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE",
    "GNUTLS_E_SUCCESS",
    "GNUTLS_HOOK_BOTH",
    "GNUTLS_HOOK_POST",
    "GNUTLS_HOOK_PRE",
    "GNUTLS_OCSP_SR_IS_AVAIL",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=src/bindings.rs");

    let library = match pkg_config::Config::new()
        .atleast_version(MIN_VERSION)
        .probe("gnutls")
    {
        Ok(library) => library,
        Err(err) => {
            eprintln!(
                "\nerror: GnuTLS >= {MIN_VERSION} was not found through pkg-config.\n\
                 On Debian or Ubuntu install it with:  apt-get install libgnutls28-dev pkg-config\n\
                 (or point PKG_CONFIG_PATH at a gnutls.pc).\n\npkg-config said: {err}\n"
            );
            std::process::exit(1);
        }
    };

    // libgnutls-dane (DANE, RFC 6698/7672): shipped with the GnuTLS development package.
    if let Err(err) = pkg_config::Config::new()
        .atleast_version(MIN_VERSION)
        .probe("gnutls-dane")
    {
        eprintln!(
            "\nerror: libgnutls-dane >= {MIN_VERSION} was not found through pkg-config.\n\
             On Debian or Ubuntu it comes with:  apt-get install libgnutls28-dev pkg-config\n\
             \npkg-config said: {err}\n"
        );
        std::process::exit(1);
    }

    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("bindings.rs");
    generate(&library, &out);
}

#[cfg(not(feature = "buildtime-bindgen"))]
fn generate(_library: &pkg_config::Library, out: &std::path::Path) {
    if let Err(err) = std::fs::copy("src/bindings.rs", out) {
        eprintln!("error: copying the committed src/bindings.rs: {err}");
        std::process::exit(1);
    }
}

#[cfg(feature = "buildtime-bindgen")]
fn generate(library: &pkg_config::Library, out: &std::path::Path) {
    let mut builder = bindgen::Builder::default()
        .header("wrapper.h")
        .formatter(bindgen::Formatter::Prettyplease)
        .layout_tests(false)
        .generate_comments(false)
        .use_core()
        .prepend_enum_name(false)
        .allowlist_recursively(true)
        .raw_line(
            "// Generated by tlsresume-gnutls-sys/build.rs with bindgen 0.73.2 from wrapper.h.",
        )
        .raw_line("// Do not edit: run bindgen/regenerate.sh.");
    for path in &library.include_paths {
        builder = builder.clang_arg(format!("-I{}", path.display()));
    }
    for name in FUNCTIONS {
        builder = builder.allowlist_function(format!("^{name}$"));
    }
    for name in TYPES {
        builder = builder.allowlist_type(format!("^{name}$"));
    }
    for name in VARS {
        builder = builder.allowlist_var(format!("^{name}$"));
    }
    let bindings = match builder.generate() {
        Ok(bindings) => bindings,
        Err(err) => {
            eprintln!(
                "error: bindgen failed (it needs libclang: apt-get install libclang-dev): {err}"
            );
            std::process::exit(1);
        }
    };
    if let Err(err) = bindings.write_to_file(out) {
        eprintln!("error: writing {}: {err}", out.display());
        std::process::exit(1);
    }
}
