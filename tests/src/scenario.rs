//! The scenarios (Exim's resumption tests), the wire each runs over, and the policies.

use core::fmt;
use core::str::FromStr;
use std::time::Duration;

use tlsresume_core::{BackendKind, Error, ProtocolVersion, ResumptionPolicy};

/// One connection of Exim's resumption tests (reference §5), at a time on the virtual clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// t = 0, empty cache: a full handshake that gets a ticket.
    Getticket,
    /// t = 10 min: the ticket resumes.
    Resume,
    /// t = 61 min: past the key's renew time; resumes, and the OpenSSL flavour renews.
    Renewal,
    /// t = 62 min: the renewed ticket resumes.
    Postrenewal,
    /// t = 2 h 1 min after a ticket was issued: past the lifetime, a full handshake.
    Timeout,
    /// The client's policy does not resume with this server.
    Notreq,
    /// The server's policy gives this client no tickets.
    ServerExcludes,
    /// A certificate that does not verify, forced through: full handshake.
    NoverifyGetticket,
    /// Its resumption: must never report "verified".
    NoverifyResume,
    /// Another load-balancer name in the EHLO response: no session offered (STARTTLS only).
    LbserverChange,
    /// Stapled OCSP response, client requires OCSP: full handshake.
    OcspGetticket,
    /// Its resumption: no staple (the known issue).
    OcspResume,
    /// A ticket presented across the flavour's key-rotation boundary: the OpenSSL flavour's
    /// second rotation (rejected), the GnuTLS flavour's 6 h period boundary.
    Rotation,
    /// DANE (RFC 7672): a DANE-EE(3) record (`3 1 1`, the server key's SHA-256) matches; the
    /// client's trust anchors do not cover the server, so only DANE authenticates it.
    DaneEeGetticket,
    /// Its resumption: DANE reported as the library reports it (exim), or carried (hardened).
    DaneEeResume,
    /// A DANE-TA(2) record (`2 0 1`, the CA certificate's SHA-256) matches the CA the server
    /// sends after its certificate.
    DaneTaGetticket,
    /// Its resumption.
    DaneTaResume,
    /// No record matches (`3 1 1` of another key): the handshake fails, whatever the trust
    /// anchors say.
    DaneNomatch,
    /// Again, 10 min later: nothing was stored, so nothing resumes.
    DaneNomatchResume,
    /// The server requires a client certificate (`tls_verify_hosts`); the client presents one
    /// the CA issued: full handshake, `$tls_in_certificate_verified` 1.
    ClientcertRequired,
    /// Its resumption: unset on an OpenSSL server under exim (the known issue).
    ClientcertRequiredResume,
    /// The server only asks (`tls_try_verify_hosts`); the client presents its certificate.
    ClientcertTried,
    /// Its resumption.
    ClientcertTriedResume,
    /// The server only asks; the client has no certificate: let in, nothing verified.
    ClientcertAbsent,
    /// Its resumption.
    ClientcertAbsentResume,
    /// The server requires a certificate; the client has none: refused.
    ClientcertRefused,
}

impl Scenario {
    /// Every scenario, in report order.
    pub const ALL: [Scenario; 26] = [
        Self::Getticket,
        Self::Resume,
        Self::Renewal,
        Self::Postrenewal,
        Self::Timeout,
        Self::Notreq,
        Self::ServerExcludes,
        Self::NoverifyGetticket,
        Self::NoverifyResume,
        Self::LbserverChange,
        Self::OcspGetticket,
        Self::OcspResume,
        Self::Rotation,
        Self::DaneEeGetticket,
        Self::DaneEeResume,
        Self::DaneTaGetticket,
        Self::DaneTaResume,
        Self::DaneNomatch,
        Self::DaneNomatchResume,
        Self::ClientcertRequired,
        Self::ClientcertRequiredResume,
        Self::ClientcertTried,
        Self::ClientcertTriedResume,
        Self::ClientcertAbsent,
        Self::ClientcertAbsentResume,
        Self::ClientcertRefused,
    ];

    /// The name used on the command line, in JSON and in the matrix.
    pub fn name(self) -> &'static str {
        match self {
            Self::Getticket => "getticket",
            Self::Resume => "resume",
            Self::Renewal => "renewal",
            Self::Postrenewal => "postrenewal",
            Self::Timeout => "timeout",
            Self::Notreq => "notreq",
            Self::ServerExcludes => "server_excludes",
            Self::NoverifyGetticket => "noverify_getticket",
            Self::NoverifyResume => "noverify_resume",
            Self::LbserverChange => "lbserver_change",
            Self::OcspGetticket => "ocsp_getticket",
            Self::OcspResume => "ocsp_resume",
            Self::Rotation => "rotation",
            Self::DaneEeGetticket => "dane_ee_getticket",
            Self::DaneEeResume => "dane_ee_resume",
            Self::DaneTaGetticket => "dane_ta_getticket",
            Self::DaneTaResume => "dane_ta_resume",
            Self::DaneNomatch => "dane_nomatch",
            Self::DaneNomatchResume => "dane_nomatch_resume",
            Self::ClientcertRequired => "clientcert_required",
            Self::ClientcertRequiredResume => "clientcert_required_resume",
            Self::ClientcertTried => "clientcert_tried",
            Self::ClientcertTriedResume => "clientcert_tried_resume",
            Self::ClientcertAbsent => "clientcert_absent",
            Self::ClientcertAbsentResume => "clientcert_absent_resume",
            Self::ClientcertRefused => "clientcert_refused",
        }
    }
}

impl Scenario {
    /// Whether the client connects with TLSA records.
    pub fn uses_dane(self) -> bool {
        matches!(
            self,
            Self::DaneEeGetticket
                | Self::DaneEeResume
                | Self::DaneTaGetticket
                | Self::DaneTaResume
                | Self::DaneNomatch
                | Self::DaneNomatchResume
        )
    }

    /// Whether the server asks the client for a certificate in this scenario (its cells show
    /// the server's `$tls_in_certificate_verified`).
    pub fn asks_client_certificate(self) -> bool {
        matches!(
            self,
            Self::ClientcertRequired
                | Self::ClientcertRequiredResume
                | Self::ClientcertTried
                | Self::ClientcertTriedResume
                | Self::ClientcertAbsent
                | Self::ClientcertAbsentResume
                | Self::ClientcertRefused
        )
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|sc| sc.name() == s.trim())
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown scenario '{s}'; scenarios: {}",
                    Self::ALL.map(|s| s.name()).join(", ")
                ))
            })
    }
}

/// How TLS starts on the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Wire {
    /// TLS from the first byte (SMTPS, port 465).
    TlsOnConnect,
    /// SMTP banner, EHLO, STARTTLS, then TLS, then EHLO again.
    Starttls,
}

impl Wire {
    /// Both, in report order.
    pub const ALL: [Wire; 2] = [Wire::TlsOnConnect, Wire::Starttls];

    /// `tls-on-connect` or `starttls`.
    pub fn name(self) -> &'static str {
        match self {
            Self::TlsOnConnect => "tls-on-connect",
            Self::Starttls => "starttls",
        }
    }
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which resumption policy both ends run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    /// `ResumptionPolicy::exim_compatible()`: the known issues reproduced.
    Exim,
    /// `ResumptionPolicy::hardened()`: the known issues fixed.
    Hardened,
}

impl PolicyKind {
    /// Both, in report order.
    pub const ALL: [PolicyKind; 2] = [PolicyKind::Exim, PolicyKind::Hardened];

    /// `exim` or `hardened`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Exim => "exim",
            Self::Hardened => "hardened",
        }
    }

    /// The policy.
    pub fn policy(self) -> ResumptionPolicy {
        match self {
            Self::Exim => ResumptionPolicy::exim_compatible(),
            Self::Hardened => ResumptionPolicy::hardened(),
        }
    }
}

impl FromStr for PolicyKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "exim" => Ok(Self::Exim),
            "hardened" => Ok(Self::Hardened),
            other => Err(Error::Config(format!(
                "unknown policy '{other}'; policies: exim, hardened"
            ))),
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses `1.2` or `1.3`.
pub fn parse_version(s: &str) -> Result<ProtocolVersion, Error> {
    match s.trim() {
        "1.2" => Ok(ProtocolVersion::Tls12),
        "1.3" => Ok(ProtocolVersion::Tls13),
        other => Err(Error::Config(format!(
            "unknown TLS version '{other}'; versions: 1.2, 1.3"
        ))),
    }
}

/// One backend pair under one version, wire and policy: the unit a sequence runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Case {
    /// The server's backend.
    pub server: BackendKind,
    /// The client's backend.
    pub client: BackendKind,
    /// The TLS version both allow.
    pub tls: ProtocolVersion,
    /// How TLS starts.
    pub wire: Wire,
    /// The policy both run.
    pub policy: PolicyKind,
}

pub(crate) const MIN: Duration = Duration::from_secs(60);
