//! The throwaway PKI (`Pki::generate`): its chain and OCSP response are accepted by every
//! compiled-in client backend (OpenSSL, GnuTLS and rustls check OCSP each with their own
//! code), and the scenarios come out as they do with the committed PKI.

use tlsresume::backends;
use tlsresume_compare::{run_case, Case, Outcome, Pki, PolicyKind, Scenario, Wire};
use tlsresume_core::{OcspStatus, ProtocolVersion, Verification};

const SCENARIOS: [Scenario; 4] = [
    Scenario::Getticket,
    Scenario::Resume,
    Scenario::OcspGetticket,
    Scenario::OcspResume,
];

/// Every compiled-in pair, TLS 1.3, TLS-on-connect, both policies.
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for server in backends::available() {
        for client in backends::available() {
            for policy in PolicyKind::ALL {
                out.push(Case {
                    server,
                    client,
                    tls: ProtocolVersion::Tls13,
                    wire: Wire::TlsOnConnect,
                    policy,
                });
            }
        }
    }
    out
}

fn label(o: &Outcome) -> String {
    format!(
        "{} {}→{} {}: error {:?}",
        o.scenario, o.case.server, o.case.client, o.case.policy, o.error
    )
}

fn find(outcomes: &[Outcome], scenario: Scenario) -> &Outcome {
    outcomes
        .iter()
        .find(|o| o.scenario == scenario)
        .unwrap_or_else(|| panic!("no {scenario} outcome"))
}

#[test]
fn generated_chain_and_ocsp_are_accepted_by_every_backend() {
    let pki = Pki::generate().expect("throwaway PKI");
    let mut failures = Vec::new();
    for case in cases() {
        let outcomes = run_case(case, &SCENARIOS, &pki);

        let get = find(&outcomes, Scenario::Getticket);
        let verification = get.client.as_ref().map(|c| c.verification);
        if get.error.is_some() || verification != Some(Verification::Verified) {
            failures.push(format!("{}: verification {verification:?}", label(get)));
        }

        let ocsp = find(&outcomes, Scenario::OcspGetticket);
        let status = ocsp.client.as_ref().map(|c| c.ocsp);
        if ocsp.error.is_some() || status != Some(OcspStatus::Verified) {
            failures.push(format!("{}: OCSP {status:?}", label(ocsp)));
        }
        if status.map(OcspStatus::code) != Some(4) && ocsp.error.is_none() {
            failures.push(format!("{}: OCSP code is not Exim's 4", label(ocsp)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// What the matrix shows of an outcome: both ends' bits, verification, OCSP, whether it
/// failed.
fn summary(o: &Outcome) -> String {
    let side = |info: Option<&tlsresume_core::SessionInfo>| {
        info.map(|i| {
            format!(
                "{:#04x} {} {} {}",
                i.resumption.bits(),
                i.resumed,
                i.verification.as_str(),
                i.ocsp.code()
            )
        })
    };
    format!(
        "{} client {:?} server {:?} failed {}",
        o.scenario,
        side(o.client.as_ref()),
        side(o.server.as_ref()),
        o.error.is_some()
    )
}

#[test]
fn generated_pki_behaves_like_the_committed_one() {
    let generated = Pki::generate().expect("throwaway PKI");
    let committed = Pki::committed().expect("committed PKI");
    let mut differences = Vec::new();
    for case in cases() {
        let a = run_case(case, &SCENARIOS, &generated);
        let b = run_case(case, &SCENARIOS, &committed);
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(&b) {
            let (sa, sb) = (summary(a), summary(b));
            if sa != sb {
                differences.push(format!(
                    "{}→{} {}: generated {sa} / committed {sb}",
                    case.server, case.client, case.policy
                ));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

#[test]
fn every_generate_makes_a_new_ca() {
    let a = Pki::generate().expect("first");
    let b = Pki::generate().expect("second");
    assert_eq!((a.roots.len(), b.roots.len()), (1, 1));
    assert_ne!(a.roots[0], b.roots[0]);
    assert_ne!(a.server.chain(), b.server.chain());
    assert_ne!(a.server.key_der(), b.server.key_der());
    assert_ne!(a.untrusted.chain(), b.untrusted.chain());
    assert_ne!(a.ocsp, b.ocsp);
}
