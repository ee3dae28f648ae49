//! Who resumes with whom, and how the known issues on a resumed session are treated:
//! [`ResumptionPolicy`].

use core::ops::RangeInclusive;
use std::net::IpAddr;

use crate::model::hostlist::HostList;

/// How a backend treats the known issues of resumed sessions.
///
/// [`hardened`](ResumptionPolicy::hardened) (the default) fixes each one;
/// [`exim_compatible`](ResumptionPolicy::exim_compatible) reproduces each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KnownIssues {
    /// On a resumed handshake, report the verification result stored with the session
    /// (honouring its verify-override) instead of "not checked on this handshake".
    pub carry_verification: bool,
    /// On a resumed handshake, report the OCSP status stored with the session instead of
    /// "no response", so that required OCSP does not fail.
    pub carry_ocsp: bool,
    /// Never offer a cached session to a server whose OCSP status is required, unless the
    /// stored status is "verified".
    pub avoid_resumption_when_ocsp_required: bool,
    /// Put the IANA cipher name in the Exim cipher string, so it does not change between full
    /// and resumed handshakes (GnuTLS).
    pub iana_cipher_names: bool,
    /// Filter expired sessions on the client before offering them (GnuTLS does not: Exim's
    /// GnuTLS client offers an expired session and the server refuses it).
    pub client_expiry_filter: bool,
    /// Store a TLS 1.2 ticket the server renewed on a resumed handshake. OpenSSL calls a
    /// client's new-session callback only after a full handshake in TLS 1.2, so Exim's OpenSSL
    /// client never sees the renewed ticket: it reports 0x17 while the server reports 0x1F, and
    /// keeps presenting the old ticket until it expires.
    pub store_renewed_tls12_ticket: bool,
}

/// Which peers resume, and how resumed sessions are reported.
///
/// The default ([`ResumptionPolicy::default`], and what [`ServerSettings::new`] and
/// [`ClientSettings::new`] start from) is [`hardened`](ResumptionPolicy::hardened): every known
/// issue of resumed sessions fixed. [`exim_compatible`](ResumptionPolicy::exim_compatible)
/// reports as Exim does, known issues included: the comparison's policy, and what
/// `tlsresume serve` and `tlsresume probe` use unless given `--policy hardened`.
///
/// [`ServerSettings::new`]: crate::ServerSettings::new
/// [`ClientSettings::new`]: crate::ClientSettings::new
///
/// ```
/// use tlsresume_core::ResumptionPolicy;
///
/// let policy = ResumptionPolicy::hardened()
///     .with_server_hosts("!192.0.2.66 : *".parse()?)
///     .with_ports(vec![25..=25, 587..=587]);
/// assert!(policy.server_may_issue("192.0.2.1".parse().unwrap(), None, 25));
/// assert!(!policy.server_may_issue("192.0.2.66".parse().unwrap(), None, 25));
/// assert!(!policy.server_may_issue("192.0.2.1".parse().unwrap(), None, 465));
/// # Ok::<(), tlsresume_core::model::hostlist::HostListError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumptionPolicy {
    server_hosts: HostList,
    client_hosts: HostList,
    ports: Option<Vec<RangeInclusive<u16>>>,
    known_issues: KnownIssues,
}

impl ResumptionPolicy {
    /// Every peer resumes; reports as Exim does, known issues included: a resumed handshake
    /// says "not verified" on OpenSSL and rustls, a client requiring OCSP fails every resumed
    /// connection on OpenSSL and rustls, GnuTLS's cipher string changes on resumption, a
    /// GnuTLS client offers expired sessions, an OpenSSL client drops a TLS 1.2 ticket renewed
    /// on a resumed handshake ([`KnownIssues`]). For reproducing Exim, not for a new service:
    /// the default is [`hardened`](Self::hardened).
    ///
    /// ```
    /// use tlsresume_core::{ClientSettings, ResumptionPolicy};
    ///
    /// # let roots = Vec::new();
    /// let mut settings = ClientSettings::new(roots);
    /// settings.resumption = ResumptionPolicy::exim_compatible();
    /// assert_eq!(settings.resumption.name(), "exim");
    /// ```
    pub fn exim_compatible() -> Self {
        Self {
            server_hosts: HostList::any(),
            client_hosts: HostList::any(),
            ports: None,
            known_issues: KnownIssues {
                carry_verification: false,
                carry_ocsp: false,
                avoid_resumption_when_ocsp_required: false,
                iana_cipher_names: false,
                client_expiry_filter: false,
                store_renewed_tls12_ticket: false,
            },
        }
    }

    /// Every peer resumes; every known issue is fixed. The default.
    pub fn hardened() -> Self {
        Self {
            known_issues: KnownIssues {
                carry_verification: true,
                carry_ocsp: true,
                avoid_resumption_when_ocsp_required: true,
                iana_cipher_names: true,
                client_expiry_filter: true,
                store_renewed_tls12_ticket: true,
            },
            ..Self::exim_compatible()
        }
    }

    /// Which clients a server gives tickets to (Exim's `tls_resumption_hosts`).
    pub fn with_server_hosts(mut self, hosts: HostList) -> Self {
        self.server_hosts = hosts;
        self
    }

    /// Which servers a client offers sessions to and asks tickets of (Exim's transport
    /// `tls_resumption_hosts`).
    pub fn with_client_hosts(mut self, hosts: HostList) -> Self {
        self.client_hosts = hosts;
        self
    }

    /// Limits resumption to these ports (the server's port on both sides); `None` for all.
    pub fn with_ports(mut self, ports: impl Into<Option<Vec<RangeInclusive<u16>>>>) -> Self {
        self.ports = ports.into();
        self
    }

    /// Replaces the known-issue treatment.
    pub fn with_known_issues(mut self, known_issues: KnownIssues) -> Self {
        self.known_issues = known_issues;
        self
    }

    /// The known-issue treatment.
    pub fn known_issues(&self) -> &KnownIssues {
        &self.known_issues
    }

    /// The server host list.
    pub fn server_hosts(&self) -> &HostList {
        &self.server_hosts
    }

    /// The client host list.
    pub fn client_hosts(&self) -> &HostList {
        &self.client_hosts
    }

    fn port_allowed(&self, port: u16) -> bool {
        self.ports
            .as_ref()
            .is_none_or(|ranges| ranges.iter().any(|r| r.contains(&port)))
    }

    /// Whether a server on `port` issues tickets to (and accepts tickets from) the client at
    /// `ip`.
    pub fn server_may_issue(&self, ip: IpAddr, name: Option<&str>, port: u16) -> bool {
        self.port_allowed(port) && self.server_hosts.matches(ip, name)
    }

    /// Whether a client asks the server at `ip`:`port` for tickets and offers it sessions.
    pub fn client_may_resume(&self, ip: IpAddr, name: Option<&str>, port: u16) -> bool {
        self.port_allowed(port) && self.client_hosts.matches(ip, name)
    }

    /// The short name of a preset (`exim`, `hardened`), or `custom`.
    pub fn name(&self) -> &'static str {
        if self.known_issues == Self::exim_compatible().known_issues {
            "exim"
        } else if self.known_issues == Self::hardened().known_issues {
            "hardened"
        } else {
            "custom"
        }
    }
}

impl Default for ResumptionPolicy {
    /// [`ResumptionPolicy::hardened`]: every known issue fixed.
    /// [`ResumptionPolicy::exim_compatible`] is the one to name for Exim's behaviour.
    fn default() -> Self {
        Self::hardened()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_differ_only_in_known_issues() {
        let e = ResumptionPolicy::exim_compatible();
        let h = ResumptionPolicy::hardened();
        assert_eq!(e.name(), "exim");
        assert_eq!(h.name(), "hardened");
        assert!(!e.known_issues().carry_verification && h.known_issues().carry_verification);
        assert!(!e.known_issues().carry_ocsp && h.known_issues().carry_ocsp);
        assert_eq!(e.server_hosts(), h.server_hosts());
        assert_eq!(ResumptionPolicy::default(), h);
        assert_eq!(ResumptionPolicy::default().name(), "hardened");
    }

    #[test]
    fn host_and_port_conditions_apply_to_each_side() {
        let p = ResumptionPolicy::exim_compatible()
            .with_client_hosts("192.0.2.0/24".parse().expect("list"))
            .with_ports(vec![25..=25]);
        let inside: IpAddr = "192.0.2.5".parse().expect("ip");
        let outside: IpAddr = "198.51.100.5".parse().expect("ip");
        assert!(p.client_may_resume(inside, None, 25));
        assert!(!p.client_may_resume(outside, None, 25));
        assert!(!p.client_may_resume(inside, None, 26));
        assert!(p.server_may_issue(outside, None, 25));
    }
}
