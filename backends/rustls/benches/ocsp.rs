//! The OCSP staple check the rustls client runs on every full handshake that asks for OCSP:
//! the committed test PKI's response (ECDSA P-256), accepted and refused.
//!
//! `cargo bench -p tlsresume-rustls --bench ocsp`

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use rustls_pki_types::UnixTime;
use tlsresume_rustls::ocsp::check_response;

fn pki(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/pki")
        .join(name);
    std::fs::read(path).expect("pki file")
}

fn cert(name: &str) -> Vec<u8> {
    tlsresume_core::certificates_from_pem(&pki(name), name).expect("pem")[0].clone()
}

fn ocsp(c: &mut Criterion) {
    let ca = cert("ca.pem");
    let leaf = cert("server-ecdsa.pem");
    let other = cert("server-rsa.pem");
    let staple = pki("server-ecdsa.ocsp.der");
    let now = UnixTime::now();
    assert!(check_response(&staple, &leaf, &[&ca], now).is_ok());
    c.bench_function("ocsp check, good response", |b| {
        b.iter(|| check_response(black_box(&staple), &leaf, &[&ca], now))
    });
    // Refused after both signatures are checked: the response is not about this certificate.
    assert!(check_response(&staple, &other, &[&ca], now).is_err());
    c.bench_function("ocsp check, response for another certificate", |b| {
        b.iter(|| check_response(black_box(&staple), &other, &[&ca], now))
    });
    let mut cut = staple.clone();
    cut.truncate(staple.len() / 2);
    c.bench_function("ocsp check, truncated response", |b| {
        b.iter(|| check_response(black_box(&cut), &leaf, &[&ca], now))
    });
}

criterion_group!(benches, ocsp);
criterion_main!(benches);
